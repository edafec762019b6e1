/**
 * A journal of reservation owners, so ADD/DEL/CHECK read one file instead of every reservation (the duplicate
 * check needs every owner: 500 reads cost ~8 ms of a cold process, and in a 99%-full /16 it is 65,000).
 *
 * It lives in the network directory as `.host-local-owners` (hidden from ls; the Go plugin reads it during its
 * walks but its content never equals an owner key and its name is no address, so Go ignores it). Lines:
 * `+\tname\tid[\tifname]` (reserved), `-\tname` (released), `L\tlast_reserved_ip.N\tcontent\tmtimeNs` (what the
 * last_reserved_ip files looked like after our last change), `D\tmtimeNs` (the directory's mtime then). Later
 * lines win.
 *
 * Why it can be trusted: it is believed only while the directory and its last_reserved_ip files are exactly as
 * our last commit left them. Each commit sets their mtimes to a moment in the past (two seconds back, the
 * nanoseconds random) and records what it set. Whoever creates, removes or renames a file in the directory
 * afterwards (the Go plugin, a person, an older version of ours) sets the directory's mtime to the present, and
 * every Go reservation rewrites a last_reserved_ip file, which sets that file's mtime to the present: neither
 * can reproduce the recorded past value, on a coarse clock or a fine one, unless the clock is stepped back by
 * seconds onto the same nanosecond. Then the next request rebuilds the journal from the files. On top of that a
 * lookup reads each candidate's file, so a stale line never counts, and names the journal never saw (there are
 * none while the stamps hold, but the check is cheap) are read. Below INDEX_MIN_NAMES names reading every file
 * takes well under a millisecond, and the journal is not used.
 */
import { appendFileSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isReservationName, LAST_RESERVED_PREFIX, type Owners, type Store } from './store';

export const JOURNAL_FILE = '.host-local-owners';
const HEADER = 'host-local owner journal v1\n';
/** Below this many names in the directory, every owner is read from its file. */
export const INDEX_MIN_NAMES = 32;

interface Parsed {
  /** Names with a live `+` line. */
  names: Set<string>;
  stamps: Map<string, string>;
  /** The directory's mtime (ns) after the last commit. */
  dirStamp: string | undefined;
  lines: number;
}

/** An owner the journal can hold: `id` or `id\r\nifname` in printable ASCII; any other is read from its file each time. */
function encodeOwner(owner: string): string | undefined {
  const parts = owner.split('\r\n');
  if (parts.length > 2 || parts.some((p) => !/^[\x21-\x7e]+$/.test(p))) return undefined;
  return parts.join('\t');
}

/** One pass over the text with indexOf (this runs over every reservation of a large network on each request). */
function parse(text: string): Parsed | undefined {
  if (!text.startsWith(HEADER) || !text.endsWith('\n')) return undefined;
  const names = new Set<string>();
  const stamps = new Map<string, string>();
  let dirStamp: string | undefined;
  let lines = 0;
  for (let pos = HEADER.length, nl = text.indexOf('\n', pos); nl >= 0; pos = nl + 1, nl = text.indexOf('\n', pos)) {
    lines++;
    const kind = text[pos];
    if (text[pos + 1] !== '\t') return undefined;
    const tab = text.indexOf('\t', pos + 2);
    const end = tab < 0 || tab > nl ? nl : tab;
    const name = text.slice(pos + 2, end);
    if (kind === '+' && end < nl) names.add(name);
    else if (kind === '-' && end === nl) names.delete(name);
    else if (kind === 'L' && end < nl) stamps.set(name, text.slice(end + 1, nl));
    else if (kind === 'D' && end === nl) dirStamp = name;
    else return undefined;
  }
  return { names, stamps, dirStamp, lines };
}

export class OwnerJournal {
  private readonly path: string;
  /** Owners read from files: all of them (small or untrusted directory), or those the journal lacks. */
  private owners: Owners = new Map();
  /** The journal text when it is trusted (lookups search it); undefined when `owners` is complete. */
  private text: string | undefined;
  private active = false;
  /** What commit does with the file: append lines, rewrite it from `owners`, or drop it (compaction is due). */
  private mode: 'append' | 'rewrite' | 'drop' = 'append';
  private lastNames: string[] = [];
  private pending: string[] = [];

  constructor(private readonly store: Store) {
    this.path = join(store.dir, JOURNAL_FILE);
  }

  private mtimeNs(path: string): string | undefined {
    try {
      return String(statSync(path, { bigint: true }).mtimeNs);
    } catch {
      return undefined;
    }
  }

  /** `last_reserved_ip.N` -> "content\tmtimeNs"; undefined when one cannot be recorded. */
  private stamp(name: string): string | undefined {
    try {
      const p = join(this.store.dir, name);
      const content = readFileSync(p, 'latin1');
      if (/[\t\n]/.test(content)) return undefined;
      return `${content}\t${statSync(p, { bigint: true }).mtimeNs}`;
    } catch {
      return undefined;
    }
  }

  /** Prepares lookups; call under the store's lock with the names of one readdir. */
  load(names: string[]): void {
    this.lastNames = names.filter((n) => n.startsWith(LAST_RESERVED_PREFIX));
    this.active = names.length >= INDEX_MIN_NAMES;
    if (!this.active) {
      this.owners = this.store.reservations(names);
      return;
    }
    let text: string | undefined;
    let parsed: Parsed | undefined;
    try {
      text = readFileSync(this.path, 'latin1');
      parsed = parse(text);
    } catch {
      parsed = undefined;
    }
    const trusted =
      parsed &&
      parsed.dirStamp !== undefined &&
      parsed.dirStamp === this.mtimeNs(this.store.dir) &&
      this.lastNames.every((n) => {
        const s = parsed!.stamps.get(n);
        return s !== undefined && s === this.stamp(n);
      });
    if (!parsed || !trusted) {
      this.mode = 'rewrite';
      this.owners = this.store.reservations(names);
      return;
    }
    this.text = text;
    for (const name of names) {
      if (parsed.names.has(name) || !isReservationName(name)) continue;
      // A reservation the journal never saw (made by hand, or an owner it cannot hold): read it.
      const owner = this.store.owner(name);
      if (owner === undefined) continue;
      this.owners.set(name, owner);
      this.note(name, owner);
    }
    if (parsed.lines > 2 * names.length + 1024) this.mode = 'drop';
  }

  private note(name: string, owner: string): void {
    const enc = encodeOwner(owner);
    if (enc !== undefined) this.pending.push(`+\t${name}\t${enc}`);
  }

  /** The reservations whose file holds exactly `owner`, each confirmed by reading the file. */
  ownedBy(owner: string): string[] {
    const found = new Set<string>();
    for (const [name, o] of this.owners) if (o === owner) found.add(name);
    const enc = this.text !== undefined ? encodeOwner(owner) : undefined;
    if (enc !== undefined) {
      const text = this.text!;
      const needle = `\t${enc}\n`;
      for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
        const start = text.lastIndexOf('\n', i) + 1;
        // Only a `+` line whose owner field is the whole match (not, say, an ifname equal to an ID).
        if (text.startsWith('+\t', start) && text.indexOf('\t', start + 2) === i) found.add(text.slice(start + 2, i));
      }
    }
    return [...found].filter((name) => this.store.owner(name) === owner);
  }

  /** Records what this request changed (call under the lock, after the changes, also after a failure). */
  commit(added: ReadonlyArray<[string, string]>, removed: readonly string[], lastWritten: readonly string[] = []): void {
    if (!this.active) return;
    if (this.mode === 'drop') return this.drop();
    for (const [name, owner] of added) {
      this.owners.set(name, owner);
      this.note(name, owner);
    }
    for (const name of removed) {
      this.owners.delete(name);
      this.pending.push(`-\t${name}`);
    }
    const stamped = [...new Set([...this.lastNames, ...lastWritten])];
    try {
      // Appending changes no mtime of the directory; a rewrite (a rename) does, so it comes before the stamps.
      let tail: string[] = this.pending;
      if (this.mode === 'rewrite') {
        tail = [];
        const lines = [HEADER.slice(0, -1)];
        for (const [name, owner] of this.owners) {
          const enc = encodeOwner(owner);
          if (enc !== undefined) lines.push(`+\t${name}\t${enc}`);
        }
        writeFileSync(`${this.path}.tmp`, lines.join('\n') + '\n', { mode: 0o600 });
        renameSync(`${this.path}.tmp`, this.path);
      }
      // Last, as nothing after them may change the directory: the stamps (see the top of this file).
      const past = Date.now() / 1000 - 2 - Number(process.hrtime.bigint() % 1_000_000_000n) / 1e9;
      for (const n of stamped) {
        utimesSync(join(this.store.dir, n), past, past);
        const st = this.stamp(n);
        if (st === undefined) return this.drop();
        tail.push(`L\t${n}\t${st}`);
      }
      utimesSync(this.store.dir, past, past);
      const dir = this.mtimeNs(this.store.dir);
      if (dir === undefined) return this.drop();
      appendFileSync(this.path, tail.concat(`D\t${dir}`).join('\n') + '\n', { mode: 0o600 });
    } catch {
      // The journal is an accelerator; without it the next request reads the files.
      this.drop();
    }
    this.pending = [];
  }

  /** Forgets the journal (after changes it did not see, like GC); the next request rebuilds it. */
  drop(): void {
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}

/**
 * A journal of reservation owners, so ADD/DEL/CHECK in a large network directory read one file instead of
 * every reservation (the duplicate check needs every owner; in a 99%-full /16 that is 65,000 reads).
 *
 * It lives in the network directory as `.host-local-owners` (hidden from ls; the Go plugin reads it during its
 * walks but its content never equals an owner key and its name is no address, so Go ignores it). Lines:
 * `+name\tid[\tifname]` (reserved), `-name` (released), `L\tlast_reserved_ip.N\tcontent\tmtimeNs` (what the
 * last_reserved_ip files looked like after our last change).
 *
 * When it can be trusted: names that vanished are seen by the readdir we do anyway; names we never saw are read.
 * The only change a readdir cannot show is a name released and reserved again by someone else (the Go plugin).
 * Every Go reservation rewrites a last_reserved_ip file, so any difference in their content or mtime means
 * "rebuild from the files". Reusing a name needs a Go DEL in between, which walks every file of the directory
 * (tens of ms at INDEX_MIN_NAMES files), so the rewrite cannot land in the same timestamp tick as ours. Below
 * that size reading every file is cheap and the journal is not used at all.
 */
import { appendFileSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addrOfName, LAST_RESERVED_PREFIX, type Owners, type Store } from './store';

export const JOURNAL_FILE = '.host-local-owners';
const HEADER = 'host-local owner journal v1\n';
/** Below this many names in the directory, every owner is read from its file. */
export const INDEX_MIN_NAMES = 4096;

interface Parsed {
  owners: Map<string, string>;
  stamps: Map<string, string>;
  lines: number;
}

/** An owner the journal can hold: `id` or `id\r\nifname` in printable ASCII; any other is read from its file each time. */
function encodeOwner(owner: string): string | undefined {
  const parts = owner.split('\r\n');
  if (parts.length > 2 || parts.some((p) => !/^[\x21-\x7e]+$/.test(p))) return undefined;
  return parts.join('\t');
}

function parse(text: string): Parsed | undefined {
  if (!text.startsWith(HEADER) || !text.endsWith('\n')) return undefined;
  const owners = new Map<string, string>();
  const stamps = new Map<string, string>();
  let lines = 0;
  // indexOf rather than split: this runs over every reservation of a large network on each request.
  for (let pos = HEADER.length, nl = text.indexOf('\n', pos); nl >= 0; pos = nl + 1, nl = text.indexOf('\n', pos)) {
    lines++;
    const kind = text[pos];
    const tab = text.indexOf('\t', pos + 2);
    const end = tab < 0 || tab > nl ? nl : tab;
    if (text[pos + 1] !== '\t') return undefined;
    const name = text.slice(pos + 2, end);
    if (kind === '-' && end === nl) owners.delete(name);
    else if (kind === '+' && end < nl) {
      const owner = text.slice(end + 1, nl);
      const t = owner.indexOf('\t');
      if (!owner || owner.indexOf('\t', t + 1) > t) return undefined;
      owners.set(name, t < 0 ? owner : `${owner.slice(0, t)}\r\n${owner.slice(t + 1)}`);
    } else if (kind === 'L' && end < nl) stamps.set(name, text.slice(end + 1, nl));
    else return undefined;
  }
  return { owners, stamps, lines };
}

export class OwnerJournal {
  private readonly path: string;
  private active = false;
  private rewrite = false;
  private lastNames: string[] = [];
  private pending: string[] = [];
  private owners: Owners = new Map();

  constructor(private readonly store: Store) {
    this.path = join(store.dir, JOURNAL_FILE);
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

  /** Every reservation with its owner; call under the store's lock with the names of one readdir. */
  load(names: string[]): Owners {
    this.lastNames = names.filter((n) => n.startsWith(LAST_RESERVED_PREFIX));
    this.active = names.length >= INDEX_MIN_NAMES;
    if (!this.active) return (this.owners = this.store.reservations(names));
    let parsed: Parsed | undefined;
    try {
      parsed = parse(readFileSync(this.path, 'latin1'));
    } catch {
      parsed = undefined;
    }
    const trusted =
      parsed &&
      parsed.stamps.size === this.lastNames.length &&
      this.lastNames.every((n) => {
        const s = parsed!.stamps.get(n);
        return s !== undefined && s === this.stamp(n);
      });
    if (!parsed || !trusted) {
      this.rewrite = true;
      return (this.owners = this.store.reservations(names));
    }
    const out: Owners = new Map();
    for (const name of names) {
      let owner = parsed.owners.get(name);
      if (owner === undefined) {
        // Not in the journal: a file someone else made, or not a reservation at all.
        if (!addrOfName(name)) continue;
        owner = this.store.owner(name);
        if (owner === undefined) continue;
        this.note(name, owner);
      }
      out.set(name, owner);
    }
    if (parsed.owners.size > out.size) for (const name of parsed.owners.keys()) if (!out.has(name)) this.pending.push(`-\t${name}`);
    this.rewrite = parsed.lines > 2 * out.size + 1024;
    return (this.owners = out);
  }

  private note(name: string, owner: string): void {
    const enc = encodeOwner(owner);
    if (enc !== undefined) this.pending.push(`+\t${name}\t${enc}`);
  }

  /** Reads one owner through the file, never the journal: what we act on is always verified. */
  verify(name: string): string | undefined {
    return this.store.owner(name);
  }

  /** Records what this request changed (call under the lock, after the changes, also after a failure). */
  commit(added: ReadonlyArray<[string, string]>, removed: readonly string[], lastWritten: readonly string[] = []): void {
    if (!this.active) return;
    for (const [name, owner] of added) {
      this.owners.set(name, owner);
      this.note(name, owner);
    }
    for (const name of removed) {
      this.owners.delete(name);
      this.pending.push(`-\t${name}`);
    }
    const stamps: string[] = [];
    for (const n of new Set([...this.lastNames, ...lastWritten])) {
      const s = this.stamp(n);
      // A last_reserved_ip file we cannot record makes the journal untrustworthy: drop it.
      if (s === undefined) return this.drop();
      stamps.push(`L\t${n}\t${s}`);
    }
    try {
      if (this.rewrite) {
        const lines = [HEADER.slice(0, -1)];
        for (const [name, owner] of this.owners) {
          const enc = encodeOwner(owner);
          if (enc !== undefined) lines.push(`+\t${name}\t${enc}`);
        }
        writeFileSync(`${this.path}.tmp`, lines.concat(stamps).join('\n') + '\n', { mode: 0o600 });
        renameSync(`${this.path}.tmp`, this.path);
      } else {
        appendFileSync(this.path, this.pending.concat(stamps).join('\n') + '\n');
      }
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

/**
 * The on-disk state, byte-compatible with the Go plugin (backend/disk) so both can share a directory:
 * `<dataDir>/<network>/<ip>` created exclusively (mode 0600) holding `containerID\r\nifname` (legacy files:
 * the ID alone), `last_reserved_ip.<N>` holding the bare address, and `lock`, which both take with flock.
 * The exclusive create is the claim; the lock keeps scans and claims of parallel plugins from interleaving.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { configError, ioError } from '../../lib/errors';
import { formatIp, parseIp, type Addr } from '../../lib/ip';
import { NAME_PATTERN } from '../../lib/types/netconf';
import { withLock } from '../../lib/lock';
import { canonical } from './range';

export const LAST_RESERVED_PREFIX = 'last_reserved_ip.';
export const BOOT_ID_FILE = 'boot_id';
/** A reservation file holds at most an ID (<= a few hundred bytes) and an ifname; anything longer is not ours. */
const MAX_OWNER_BYTES = 4096;

/** Reservation file name -> owner text (`id\r\nifname`, or `id` in legacy files). */
export type Owners = Map<string, string>;

const errnoOf = (e: unknown) => (e as NodeJS.ErrnoException)?.code;
const failed = (what: string, e: unknown) => ioError(`${what}: ${(e as Error).message}`);

/** A reservation file's name, when `name` is one (the canonical text of an address). */
export function addrOfName(name: string): Addr | undefined {
  const a = parseIp(name);
  return a && formatIp(canonical(a)) === name ? canonical(a) : undefined;
}

/** Dotted decimal without leading zeros: exactly the canonical text of an IPv4 address. */
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * Whether `name` is a reservation file's name. The same answer as `addrOfName`, without parsing and formatting
 * an IPv4 name (this runs for every file of the directory on each request).
 */
export function isReservationName(name: string): boolean {
  if (CANONICAL_V4.test(name)) return true;
  return name.includes(':') && addrOfName(name) !== undefined;
}

export class Store {
  readonly lockPath: string;
  private readonly buf = Buffer.allocUnsafe(MAX_OWNER_BYTES);

  private constructor(readonly dir: string) {
    this.lockPath = join(dir, 'lock');
  }

  /** The network's directory; a name that could leave dataDir is refused before anything touches the disk. */
  static for(dataDir: string, network: string): Store {
    const dir = resolve(dataDir, network);
    if (!NAME_PATTERN.test(network) || dirname(dir) !== resolve(dataDir)) {
      throw configError(`name: network name ${JSON.stringify(network)} would leave ipam.dataDir ${dataDir}`);
    }
    return new Store(dir);
  }

  /**
   * A file of the directory. `dir` is resolved and names hold no "/" (they come from readdir or are addresses), so
   * plain concatenation is exact; path.join costs more than the open itself in a short-lived process.
   */
  path(name: string): string {
    return `${this.dir}/${name}`;
  }

  ensureDir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      throw failed(`cannot create ${this.dir}`, e);
    }
  }

  /** Runs `fn` holding the same flock the Go plugin takes. */
  locked<T>(fn: () => Promise<T> | T): Promise<T> {
    return withLock(this.lockPath, async () => fn());
  }

  /** Every name in the directory (one readdir); none when it does not exist yet. */
  names(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return [];
      throw failed(`cannot list ${this.dir}`, e);
    }
  }

  /** The owner text of a reservation file (trimmed, as Go compares it); undefined when it vanished. */
  owner(name: string): string | undefined {
    let fd: number;
    try {
      fd = openSync(this.path(name), 'r');
    } catch (e) {
      if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'EISDIR') return undefined;
      throw failed(`cannot read ${this.path(name)}`, e);
    }
    try {
      const n = readSync(fd, this.buf, 0, MAX_OWNER_BYTES, 0);
      return this.buf.toString('utf8', 0, n).trim();
    } catch (e) {
      if (errnoOf(e) === 'EISDIR') return undefined;
      throw failed(`cannot read ${this.path(name)}`, e);
    } finally {
      closeSync(fd);
    }
  }

  /** Every reservation's owner, read from its file. */
  reservations(names = this.names()): Owners {
    const out: Owners = new Map();
    for (const name of names) {
      if (!isReservationName(name)) continue;
      const owner = this.owner(name);
      if (owner !== undefined) out.set(name, owner);
    }
    return out;
  }

  /** Claims `name` for `owner`; false when someone holds it already. */
  reserve(name: string, owner: string): boolean {
    const path = this.path(name);
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      if (errnoOf(e) === 'EEXIST') return false;
      throw failed(`cannot create ${path}`, e);
    }
    try {
      writeSync(fd, owner);
    } catch (e) {
      closeSync(fd);
      this.remove(name);
      throw failed(`cannot write ${path}`, e);
    }
    closeSync(fd);
    return true;
  }

  remove(name: string): boolean {
    try {
      unlinkSync(this.path(name));
      return true;
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return false;
      throw failed(`cannot remove ${this.path(name)}`, e);
    }
  }

  lastReserved(setIndex: number): Addr | undefined {
    try {
      const a = parseIp(readFileSync(this.path(LAST_RESERVED_PREFIX + setIndex), 'utf8').trim());
      return a ? canonical(a) : undefined;
    } catch {
      // Missing or unreadable: round robin restarts at the range start, as in Go.
      return undefined;
    }
  }

  /** Records the round-robin position; returns the file's name. */
  setLastReserved(setIndex: number, name: string): string {
    const file = LAST_RESERVED_PREFIX + setIndex;
    try {
      writeFileSync(this.path(file), name, { mode: 0o600 });
    } catch (e) {
      throw failed(`cannot write ${this.path(file)}`, e);
    }
    return file;
  }

  /**
   * Releases reservations made in an earlier boot, once per boot: the `boot_id` marker says which boot last
   * checked. Files older than this boot's start cannot belong to a live container (its netns died with the
   * boot). Call under the lock so parallel ADDs do it once and never see a half-cleaned directory.
   */
  reclaimAfterReboot(bootId: string, bootTimeMs: number): string[] {
    const marker = this.path(BOOT_ID_FILE);
    let seen: string | undefined;
    try {
      seen = readFileSync(marker, 'utf8').trim();
    } catch {
      seen = undefined;
    }
    if (seen === bootId) return [];
    const removed: string[] = [];
    for (const name of this.names()) {
      if (!isReservationName(name)) continue;
      try {
        if (statSync(this.path(name)).mtimeMs < bootTimeMs && this.remove(name)) removed.push(name);
      } catch (e) {
        if (errnoOf(e) !== 'ENOENT') throw e;
      }
    }
    try {
      writeFileSync(`${marker}.tmp`, bootId, { mode: 0o600 });
      renameSync(`${marker}.tmp`, marker);
    } catch (e) {
      throw failed(`cannot write ${marker}`, e);
    }
    return removed;
  }
}

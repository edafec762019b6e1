/**
 * Puts the plugin executables into the node's bin dir. dist/* are hard links of one large file, so each
 * distinct source file is copied once and the other names are hard-linked to that copy. A target that already
 * has the source's size and hash is left alone (no write, no new inode). Hashing two 87 MiB files costs ~0.3 s,
 * so a stamp in the bin dir remembers what we installed: when neither the source nor the target changed since
 * (same size and mtime; same inode for the target), a restart skips the hashing too.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { copyAtomic, linkAtomic, sha256File, writeIfChanged } from './files';

export const STAMP = '.cni-ts-install.json';

export interface BinaryChange {
  name: string;
  action: 'copied' | 'linked';
}

const identity = (path: string) => {
  const s = statSync(path);
  return { key: `${s.dev}:${s.ino}`, size: s.size, ino: s.ino, dev: s.dev, version: `${s.size}:${s.mtimeMs}` };
};

type Stamp = Record<string, { source: string; target: string }>;

function readStamp(binDir: string): Stamp {
  try {
    return JSON.parse(readFileSync(join(binDir, STAMP), 'utf8')) as Stamp;
  } catch {
    return {};
  }
}

const stampOf = (src: string, dst: string) => {
  const s = identity(src);
  const d = identity(dst);
  return { source: s.version, target: `${d.key}:${d.version}` };
};

export async function installBinaries(sourceDir: string, binDir: string, names: readonly string[]): Promise<BinaryChange[]> {
  for (const n of names) if (!existsSync(join(sourceDir, n))) throw new Error(`cannot install ${n}: ${join(sourceDir, n)} does not exist`);
  const stamp = readStamp(binDir);
  const fresh = names.every((n) => {
    const st = stamp[n];
    if (!st || !existsSync(join(binDir, n))) return false;
    const now = stampOf(join(sourceDir, n), join(binDir, n));
    return now.source === st.source && now.target === st.target;
  });
  if (fresh) return [];
  const changes: BinaryChange[] = [];
  // source inode -> the target name that already holds its content
  const placed = new Map<string, string>();
  const hashes = new Map<string, Promise<string>>();
  const hashOf = (path: string, key: string) => {
    if (!hashes.has(key)) hashes.set(key, sha256File(path));
    return hashes.get(key)!;
  };
  for (const name of names) {
    const src = join(sourceDir, name);
    const dst = join(binDir, name);
    const s = identity(src);
    const prior = placed.get(s.key);
    const d = existsSync(dst) ? identity(dst) : undefined;
    if (prior) {
      const p = identity(join(binDir, prior));
      if (d && d.key === p.key) continue;
      // Same content as a file we already placed: one more name for it (a copy where the file system has no hard links).
      try {
        linkAtomic(join(binDir, prior), dst);
        changes.push({ name, action: 'linked' });
      } catch {
        copyAtomic(src, dst);
        changes.push({ name, action: 'copied' });
      }
      continue;
    }
    const same = d !== undefined && d.size === s.size && (await hashOf(dst, d.key)) === (await hashOf(src, s.key));
    if (!same) {
      copyAtomic(src, dst);
      changes.push({ name, action: 'copied' });
    }
    placed.set(s.key, name);
  }
  writeIfChanged(join(binDir, STAMP), JSON.stringify(Object.fromEntries(names.map((n) => [n, stampOf(join(sourceDir, n), join(binDir, n))]))) + '\n');
  return changes;
}

/**
 * Puts the plugin executables into the node's bin dir. dist/* are hard links of one large file, so each
 * distinct source file is copied once and the other names are hard-linked to that copy. A target that already
 * has the source's size and hash is left alone (no write, no new inode): restarting the DaemonSet is free.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { copyAtomic, linkAtomic, sha256File } from './files';

export interface BinaryChange {
  name: string;
  action: 'copied' | 'linked';
}

const identity = (path: string) => {
  const s = statSync(path);
  return { key: `${s.dev}:${s.ino}`, size: s.size, ino: s.ino, dev: s.dev };
};

export async function installBinaries(sourceDir: string, binDir: string, names: readonly string[]): Promise<BinaryChange[]> {
  for (const n of names) if (!existsSync(join(sourceDir, n))) throw new Error(`cannot install ${n}: ${join(sourceDir, n)} does not exist`);
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
      // Same content as a file we already placed: one more name for it (falls back to a copy across devices).
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
  return changes;
}

/**
 * Atomic file replacement: write beside the target, fsync, rename over it, fsync the folder. A reader (a
 * runtime loading the conflist, a kubelet exec'ing a plugin) sees the old file or the new one, never a part.
 * The old inode lives on while something has it open or is executing it, so there is no "text file busy".
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync, createReadStream, copyFileSync, statSync, chmodSync, constants } from 'node:fs';
import { createHashLazily } from '../hash';
import { basename, dirname, join } from 'node:path';

const tmpName = (target: string) => join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);

function fsyncPath(path: string, flags = constants.O_RDONLY): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `target` atomically unless it already holds exactly that; returns whether it wrote. */
export function writeIfChanged(target: string, data: string, mode = 0o644): boolean {
  try {
    if (readFileSync(target, 'utf8') === data) return false;
  } catch {
    // missing or unreadable: write it
  }
  const tmp = tmpName(target);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
  fsyncPath(dirname(target));
  return true;
}

/** Copies `source` over `target` atomically, keeping the source's permission bits. */
export function copyAtomic(source: string, target: string): void {
  const tmp = tmpName(target);
  rmSync(tmp, { force: true });
  try {
    copyFileSync(source, tmp);
    chmodSync(tmp, statSync(source).mode & 0o7777);
    fsyncPath(tmp, constants.O_RDWR);
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(dirname(target));
}

/** Makes `target` another name of `existing` atomically (rename over, never unlink first). */
export function linkAtomic(existing: string, target: string): void {
  const tmp = tmpName(target);
  rmSync(tmp, { force: true });
  linkSync(existing, tmp);
  try {
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncPath(dirname(target));
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHashLazily('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

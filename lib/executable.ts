/**
 * Whether a path is an executable file, without an exception for the usual "no such file": looking a command up
 * along PATH or CNI_PATH misses in most directories, and each miss thrown and caught made a cold plugin process
 * build an Error with its stack trace.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';

export function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p, { throwIfNoEntry: false })?.isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    // ENOTDIR (a PATH entry that is a file), EACCES, ...
    return false;
  }
}

/** Where a command is found on PATH, without starting a process (the hot path cannot afford `iptables --version`). */
export function findOnPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, cmd);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

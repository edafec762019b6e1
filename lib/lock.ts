/**
 * File locks compatible with the Go plugins' flock(LOCK_EX). Node has no flock(2), so we open the lock file
 * ourselves and let a `flock FD` child take the lock on our open file description and exit: the lock then
 * belongs to our descriptor. It is released when we close it, or by the kernel when this process dies (a killed
 * plugin never leaves a lock behind). Waiting is bounded, and a timeout names the processes holding the file.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { ioError, tryAgainError } from './errors';
import { traceSpawn } from './exec';
import { lockHolder } from './lock-holder';
import { rehearsal } from './rehearsal';

export interface Lock {
  release(): Promise<void>;
}

export const DEFAULT_LOCK_WAIT_MS = 10_000;
/** flock's exit status when it gave up waiting (-E). */
const TIMED_OUT = 75;

/** Takes an exclusive flock on `file` (created if missing), waiting at most `waitMs`. */
export function lockFile(file: string, waitMs = DEFAULT_LOCK_WAIT_MS): Promise<Lock> {
  let fd: number;
  try {
    fd = openSync(file, 'a', 0o644);
  } catch (e) {
    return Promise.reject(ioError(`cannot open lock file ${file}: ${(e as Error).message}`));
  }
  const secs = Math.max(1, Math.ceil(waitMs / 1000));
  if (rehearsal.on) {
    closeSync(fd);
    return Promise.resolve({ release: async () => undefined });
  }
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      closeSync(fd);
      reject(err);
    };
    // The child sees our descriptor as its fd 3 and locks the open file description we share.
    const started = performance.now();
    const child = spawn('flock', ['-x', '-w', String(secs), '-E', String(TIMED_OUT), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => fail(ioError(`cannot take lock ${file}: flock: ${e.message}`)));
    child.on('close', (code) => {
      traceSpawn(started, `flock -x -w ${secs} ${file}`, code);
      if (code === 0) {
        resolve({
          release: async () => {
            closeSync(fd);
          },
        });
      } else if (code === TIMED_OUT) fail(tryAgainError(`timed out after ${secs} s waiting for lock ${file}, held by ${lockHolder(file)}`));
      else fail(ioError(`cannot take lock ${file}: flock exited ${code}: ${stderr.trim()}`));
    });
  });
}

/** Runs `fn` while holding the lock on `file`. */
export async function withLock<T>(file: string, fn: () => Promise<T>, waitMs = DEFAULT_LOCK_WAIT_MS): Promise<T> {
  const lock = await lockFile(file, waitMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

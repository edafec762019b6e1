/**
 * File locks compatible with the Go plugins' flock(LOCK_EX). Node has no flock(2), so a small `flock FILE cat`
 * child holds the lock for us: we know we hold it when cat echoes our handshake byte, and it is released when
 * we close cat's stdin, or when the kernel closes the pipe because this process died (a killed plugin never
 * leaves a lock behind). Waiting is bounded, and a timeout names the process that holds the lock.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { tryAgainError, ioError } from './errors';

export interface Lock {
  release(): Promise<void>;
}

export const DEFAULT_LOCK_WAIT_MS = 10_000;

/** Who holds a flock on `file`, from /proc/locks ("pid 123 (host-local)"), for error messages. */
export function lockHolder(file: string): string {
  try {
    const ino = statSync(file).ino;
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      const f = line.split(/\s+/);
      // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
      if (f[1] === 'FLOCK' && f[5]?.endsWith(`:${ino}`)) {
        const pid = f[4]!;
        let comm = '?';
        try {
          comm = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
          // Our own lock holder is `flock FILE cat`; name its parent, the plugin that owns it.
          if (comm.startsWith('flock ') || comm === 'cat') {
            const ppid = /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
            if (ppid) comm = `${readFileSync(`/proc/${ppid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')} (pid ${ppid}) via ${comm}`;
          }
        } catch {
          // the holder exited meanwhile
        }
        return `pid ${pid} (${comm})`;
      }
    }
  } catch {
    // /proc/locks unreadable: say nothing more
  }
  return 'another process';
}

/** Takes an exclusive flock on `file` (created if missing), waiting at most `waitMs`. */
export function lockFile(file: string, waitMs = DEFAULT_LOCK_WAIT_MS): Promise<Lock> {
  return new Promise((resolve, reject) => {
    const secs = Math.max(1, Math.ceil(waitMs / 1000));
    const child = spawn('flock', ['-x', '-w', String(secs), '-E', '75', file, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let held = false;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<void>((r) => child.on('close', () => r()));
    child.stdout.once('data', () => {
      held = true;
      resolve({
        release: () => {
          child.stdin.end();
          return closed;
        },
      });
    });
    child.stdin.on('error', () => {});
    child.on('error', (e) => reject(ioError(`cannot take lock ${file}: flock: ${e.message}`)));
    child.on('close', (code) => {
      if (held) return;
      if (code === 75) reject(tryAgainError(`timed out after ${secs} s waiting for lock ${file}, held by ${lockHolder(file)}`));
      else reject(ioError(`cannot take lock ${file}: flock exited ${code}: ${stderr.trim()}`));
    });
    child.stdin.write('\n');
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

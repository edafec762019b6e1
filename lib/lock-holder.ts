/** Names the processes that hold a lock file, for "timed out waiting for lock X, held by ..." errors. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';

const cmdline = (pid: string) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');

/** Who has `file` open ("pid 123 (host-local)"), for error messages; only called after a timeout. */
export function lockHolder(file: string): string {
  const holders: string[] = [];
  const path = resolve(file);
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
      try {
        for (const fd of readdirSync(`/proc/${pid}/fd`)) {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) {
            holders.push(`pid ${pid} (${cmdline(pid)})`);
            break;
          }
        }
      } catch {
        // the process exited, or is not ours to look at
      }
    }
  } catch {
    // /proc unreadable: say nothing more
  }
  return holders.length ? holders.slice(0, 3).join(', ') : 'another process';
}

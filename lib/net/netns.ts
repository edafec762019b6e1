/**
 * Work inside a container's network namespace: one process per request, `nsenter --net=PATH sh -c` that
 * writes the namespace's sysctls (/proc/sys/net follows the process's namespace) and then execs
 * `ip -batch -` for links, addresses and routes.
 */
import { statSync } from 'node:fs';
import { ExecError, run, type RunResult } from '../exec';
import { failedLine } from './batch';
import { sysctlScript } from './sysctl';

export type Sysctl = readonly [string, string | number];

export interface NetnsWork {
  /** Must succeed (the request fails otherwise). */
  sysctls?: Sysctl[];
  /** Written when possible (an IPv6-less kernel has no IPv6 sysctls); failures are ignored, as the reference does. */
  bestEffortSysctls?: Sysctl[];
  /** `ip -batch` lines, run after the sysctls. */
  batch?: string[];
  /** Global `ip` options for the batch ("-j", "-d"). */
  ipOptions?: string[];
}

/** Whether a netns path exists (a runtime may have removed it before DEL). */
export function netnsExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function inNetns(netns: string, w: NetnsWork): Promise<RunResult> {
  const parts: string[] = [];
  for (const s of w.bestEffortSysctls ?? []) parts.push(`{ ${sysctlScript([s])}; } 2>/dev/null`);
  if (w.sysctls?.length) parts.push(sysctlScript(w.sysctls));
  const batch = w.batch ?? [];
  if (batch.length) parts.push(`exec ip ${(w.ipOptions ?? []).join(' ')} -batch -`);
  if (!parts.length) return { code: 0, stdout: '', stderr: '' };
  // Best-effort parts end with ';' so a failing one does not stop the rest; required ones chain with '&&'.
  const script = parts.map((p, i) => (i === parts.length - 1 ? p : p.endsWith('2>/dev/null') ? `${p};` : `${p} &&`)).join(' ');
  try {
    return await run('sh', ['-c', script], { netns, input: batch.join('\n') + '\n' });
  } catch (e) {
    if (e instanceof ExecError && e.result) {
      const at = failedLine(e.result.stderr);
      const line = at === undefined ? undefined : batch[at];
      const reason = e.result.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join(' | ');
      throw new ExecError(e.code, line ? `ip ${line} (in netns ${netns}): ${reason}` : `in netns ${netns}: ${reason}`, e.result.stderr, e.result);
    }
    throw e;
  }
}

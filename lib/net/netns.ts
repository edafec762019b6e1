/**
 * Work inside a container's network namespace: one process per request, `nsenter --net=PATH sh -c` that
 * writes the namespace's sysctls (/proc/sys/net follows the process's namespace) and then execs
 * `ip -batch -` for links, addresses and routes.
 */
import { statSync } from 'node:fs';
import { ExecError, start, type RunResult } from '../exec';
import { batchWord, failedLine } from './batch';
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

/** The shell fragment that writes the sysctls: required ones chained with &&, best-effort ones never failing. */
function sysctlCommands(w: NetnsWork): string {
  const parts = (w.bestEffortSysctls ?? []).map((s) => `{ ${sysctlScript([s])}; } 2>/dev/null`);
  if (w.sysctls?.length) parts.push(sysctlScript(w.sysctls));
  // `true` keeps the line valid when there is nothing to write, and the last best-effort part from failing it.
  return [...parts, 'true'].map((p, i, all) => (i === all.length - 1 ? p : p.endsWith('2>/dev/null') ? `${p};` : `${p} &&`)).join(' ');
}

export interface NetnsSession {
  /** Does the work; the process was already started, so only the work itself is waited for. */
  run(w: NetnsWork): Promise<RunResult>;
  abort(): Promise<void>;
}

function explain(e: unknown, netns: string, batch: readonly string[]): unknown {
  if (e instanceof ExecError && e.result) {
    const at = failedLine(e.result.stderr);
    const line = at === undefined ? undefined : batch[at];
    const reason = e.result.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join(' | ');
    return new ExecError(e.code, line ? `ip ${line} (in netns ${netns}): ${reason}` : `in netns ${netns}: ${reason}`, e.result.stderr, e.result);
  }
  return e;
}

/**
 * Starts the one process a request runs in the container's namespace before it knows what to do there (its
 * start-up then overlaps IPAM and the host batch). It reads one line of sysctl commands, runs them, then execs
 * `ip -batch -` on the rest of its input. (dash's `read` takes one byte at a time, so `ip` gets the rest.)
 */
export function startInNetns(netns: string, ipOptions: string[] = []): NetnsSession {
  const p = start('sh', ['-c', `read -r s && eval "$s" && exec ip ${ipOptions.join(' ')} -batch -`], { netns });
  return {
    async run(w) {
      const batch = w.batch ?? [];
      p.write(`${sysctlCommands(w)}\n${batch.join('\n')}\n`);
      try {
        return await p.finish();
      } catch (e) {
        throw explain(e, netns, batch);
      }
    },
    abort: () => p.abort(),
  };
}

export async function inNetns(netns: string, w: NetnsWork): Promise<RunResult> {
  if (!w.batch?.length && !w.sysctls?.length && !w.bestEffortSysctls?.length) return { code: 0, stdout: '', stderr: '' };
  return startInNetns(netns, w.ipOptions).run(w);
}

/** Deletes a link inside a namespace; a link that is already gone is fine. */
export async function deleteLinkInNetns(netns: string, name: string): Promise<void> {
  await inNetns(netns, { batch: [`link del dev ${batchWord(name)}`] }).catch((e: unknown) => {
    if (!(e instanceof ExecError && /Cannot find device|does not exist/.test(e.result?.stderr ?? e.message))) throw e;
  });
}

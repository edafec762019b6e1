/**
 * `ip -batch -` with lines that may find their object already there. Creating a shared bridge or its gateway
 * address races between concurrent ADDs (and the gateway is usually there already); for lines marked `okIfExists`
 * "File exists" means another ADD got there first, which is success.
 */
import { ErrorCode } from '../errors';
import { ExecError, start, type RunOptions } from '../exec';

export interface BatchLine {
  line: string;
  /** "File exists" / "Address already assigned" on this line is success. */
  okIfExists?: boolean;
  /** A refinement the request does without when the kernel refuses it (say, IPv6 settings on an IPv6-less host). */
  optional?: boolean;
}

const EXISTS = /File exists|already assigned/;

/** The 0-based index of the line `ip -batch` reported as failing, if its stderr names one. */
export function failedLine(stderr: string): number | undefined {
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) - 1 : undefined;
}

/** Characters `ip -batch` would split or cut a word at ('#' starts a comment). */
export function batchWord(s: string): string {
  if (/^[^\s#'"]+$/.test(s)) return s;
  if (s.includes('#') || (s.includes("'") && s.includes('"'))) throw new Error(`"${s}" cannot be passed to ip -batch`);
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

/** Error text per failing line of an `ip -force -batch` run (0-based line index -> its messages). */
export function batchFailures(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let pending: string[] = [];
  for (const l of stderr.split('\n')) {
    const at = failedLine(l);
    if (at === undefined) {
      if (l.trim()) pending.push(l.trim());
      continue;
    }
    out.set(at, pending.join(' | '));
    pending = [];
  }
  return out;
}

export interface BatchDone {
  existed: Set<number>;
  stdout: string;
}

export interface TolerantBatch {
  /** Sends lines; `ip` applies them as they arrive. */
  add(lines: readonly BatchLine[]): void;
  /**
   * Ends the batch. Resolves to the indices of `okIfExists` lines whose object was already there, and what the
   * batch printed (its `show` lines); any other failure throws, naming the first failing line.
   */
  done(): Promise<BatchDone>;
  abort(): Promise<void>;
}

/** Starts one `ip -force -batch` (it goes on past failing lines) whose lines may be sent in several parts. */
export function startTolerantBatch(opts: Omit<RunOptions, 'input'> = {}): TolerantBatch {
  const p = start('ip', ['-force', '-batch', '-'], { ...opts, allowFailure: true });
  const lines: BatchLine[] = [];
  return {
    add(more) {
      lines.push(...more);
      if (more.length) p.write(more.map((l) => l.line).join('\n') + '\n');
    },
    async done() {
      const r = await p.finish();
      const existed = new Set<number>();
      if (r.code === 0) return { existed, stdout: r.stdout };
      const failures = batchFailures(r.stderr);
      if (!failures.size) throw new ExecError(ErrorCode.Internal, `ip -batch failed with exit status ${r.code}: ${r.stderr.trim()}`, r.stderr, r);
      for (const [i, why] of [...failures].sort((x, y) => x[0] - y[0])) {
        if (lines[i]?.okIfExists && EXISTS.test(why)) {
          existed.add(i);
          continue;
        }
        if (lines[i]?.optional) continue;
        const where = opts.netns ? ` (in netns ${opts.netns})` : '';
        throw new ExecError(ErrorCode.Internal, `ip ${lines[i]?.line ?? `line ${i + 1}`}${where}: ${why}`, r.stderr, r);
      }
      return { existed, stdout: r.stdout };
    },
    abort: () => p.abort(),
  };
}

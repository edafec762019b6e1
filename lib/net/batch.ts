/**
 * `ip -batch -` with lines that may find their object already there. Creating a shared bridge or its gateway
 * address races between concurrent ADDs; for lines marked `okIfExists` "File exists" means another ADD won the
 * race, so the batch resumes after that line instead of failing (lines before it have already been applied).
 */
import { ExecError, ipBatch, type RunOptions } from '../exec';

export interface BatchLine {
  line: string;
  /** "File exists" / "Address already assigned" on this line is success. */
  okIfExists?: boolean;
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

/** Runs the lines; returns the indices of `okIfExists` lines whose object was already there. */
export async function ipBatchTolerant(lines: readonly BatchLine[], opts: RunOptions = {}): Promise<Set<number>> {
  const existed = new Set<number>();
  let from = 0;
  while (from < lines.length) {
    const rest = lines.slice(from);
    try {
      await ipBatch(
        rest.map((l) => l.line),
        opts,
      );
      return existed;
    } catch (e) {
      const stderr = e instanceof ExecError ? e.result?.stderr ?? '' : '';
      const at = failedLine(stderr);
      if (at === undefined || !rest[at]?.okIfExists || !EXISTS.test(stderr)) throw e;
      existed.add(from + at);
      from += at + 1;
    }
  }
  return existed;
}

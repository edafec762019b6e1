/**
 * The one place that starts processes. Every kernel or netfilter step is one process at most, so the
 * wrappers here take batches (`ip -batch -`, `iptables-restore --noflush`, `nft -f -`). Failures name the
 * command, its exit status and its stderr. With CNI_TS_TRACE=<file> every spawn is logged with its duration,
 * which is how the benchmark counts processes per command.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { CniError, ErrorCode } from './errors';
import { lockHolder } from './lock-holder';

export interface RunOptions {
  /** Written to the child's stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Kill the child after this long and fail with code 11 (try again later). Default 30 s. */
  timeoutMs?: number;
  /** Run inside the network namespace at this path (via nsenter). */
  netns?: string;
  /** Resolve instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  env?: Record<string, string | undefined>;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class ExecError extends CniError {
  readonly result: RunResult | undefined;
  constructor(code: number, msg: string, details: string, result?: RunResult) {
    super(code, msg, details);
    this.result = result;
  }
}


const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
export const commandLine = (cmd: string, args: readonly string[]) => [cmd, ...args].map(quote).join(' ');

/**
 * Logs one finished process to CNI_TS_TRACE (one line each: duration, command, exit). Processes started
 * outside `run` (the lock helper, delegated plugins) call it too, so the count per command is complete.
 */
export function traceSpawn(startedMs: number, shown: string, exit: string | number | null): void {
  const file = process.env.CNI_TS_TRACE;
  if (!file) return;
  try {
    appendFileSync(file, `${Date.now() - startedMs}ms ${shown.replace(/\n/g, '\\n')} -> ${exit}\n`);
  } catch {
    // Tracing must never break a request.
  }
}

/** A process started now whose input is written later (see `start`). */
export interface FedProcess {
  write(text: string | Buffer): void;
  /** Closes the input and waits; resolves or rejects as `run` does. */
  finish(): Promise<RunResult>;
  /** Kills the process (its input is abandoned) and waits for it to go. */
  abort(): Promise<void>;
}

/**
 * Starts a process before its input is known, so its start-up overlaps other work (a plugin's IPAM call, say).
 * The caller must `finish` or `abort` it; if this process dies first, the child sees end of input.
 */
export function start(cmd: string, args: readonly string[], opts: Omit<RunOptions, 'input'> = {}): FedProcess {
  const [file, argv] = opts.netns ? ['nsenter', [`--net=${opts.netns}`, '--', cmd, ...args]] : [cmd, [...args]];
  const shown = commandLine(cmd, args) + (opts.netns ? ` (in netns ${opts.netns})` : '');
  const started = Date.now();
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: (opts.env ?? process.env) as NodeJS.ProcessEnv });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let timedOut = false;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.on('error', () => {
    // The child may exit before reading its input; its exit status tells what happened.
  });
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const what = e.code === 'ENOENT' ? `${file} is not installed or not on PATH` : e.message;
      reject(new ExecError(ErrorCode.IoFailure, `cannot run ${shown}: ${what}`, ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code: code ?? 128, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      traceSpawn(started, shown, signal ?? code);
      if (timedOut) {
        reject(new ExecError(ErrorCode.TryAgainLater, `${shown} did not finish within ${timeoutMs} ms and was killed`, result.stderr.trim(), result));
      } else if (result.code !== 0 && !opts.allowFailure) {
        const why = result.stderr.trim() || result.stdout.trim() || `killed by ${signal}`;
        reject(new ExecError(ErrorCode.Internal, `${shown} failed with exit status ${result.code}: ${why.split('\n').slice(0, 6).join(' | ')}`, why, result));
      } else resolve(result);
    });
  });
  // Failures surface through finish(); until then (input may come much later) they must not count as unhandled.
  done.catch(() => undefined);
  return {
    write: (text) => void child.stdin.write(text),
    finish: () => {
      child.stdin.end();
      return done;
    },
    abort: () => {
      child.kill('SIGKILL');
      return done.then(
        () => undefined,
        () => undefined,
      );
    },
  };
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { input, ...rest } = opts;
  try {
    const p = start(cmd, args, rest);
    if (input !== undefined) p.write(input);
    return p.finish();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Runs `ip -batch -` with the given lines. On failure the message names the failing line's command,
 * not just its number.
 */
export async function ipBatch(lines: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  if (!lines.length) return { code: 0, stdout: '', stderr: '' };
  try {
    return await run('ip', ['-batch', '-'], { ...opts, input: lines.join('\n') + '\n' });
  } catch (e) {
    if (e instanceof ExecError && e.result) {
      const m = /Command failed -:(\d+)/.exec(e.result.stderr);
      const line = m ? lines[Number(m[1]) - 1] : undefined;
      const reason = e.result.stderr.split('\n').filter((l) => l && !l.startsWith('Command failed')).join(' | ');
      if (line) throw new ExecError(e.code, `ip ${line}${opts.netns ? ` (in netns ${opts.netns})` : ''}: ${reason}`, e.result.stderr, e.result);
    }
    throw e;
  }
}

/** Applies an iptables-restore payload without flushing others' chains; waits a bounded time for the xtables lock. */
/** Where iptables-legacy keeps its lock (iptables-nft takes none). */
const XTABLES_LOCK = '/run/xtables.lock';

export async function iptablesRestore(family: 4 | 6, payload: string, opts: RunOptions = {}): Promise<RunResult> {
  const secs = Math.ceil((opts.timeoutMs ?? 10_000) / 1000);
  try {
    return await run(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush', '-w', String(secs)], { ...opts, input: payload });
  } catch (e) {
    // iptables-legacy gave up waiting for the xtables lock: a retryable error that says who holds it.
    if (e instanceof ExecError && /xtables lock/i.test(e.result?.stderr ?? '')) {
      throw new ExecError(ErrorCode.TryAgainLater, `iptables-restore waited ${secs} s for ${XTABLES_LOCK}, held by ${lockHolder(XTABLES_LOCK)}`, e.details, e.result);
    }
    throw e;
  }
}

/** Applies an nft script as one transaction. */
export function nftApply(script: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('nft', ['-f', '-'], { ...opts, input: script });
}

/**
 * The one place that starts processes. Every kernel or netfilter step is one process at most, so the
 * wrappers here take batches (`ip -batch -`, `iptables-restore --noflush`, `nft -f -`). Failures name the
 * command, its exit status and its stderr. With CNI_TS_TRACE=<file> every spawn is logged with its duration,
 * which is how the benchmark counts processes per command.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { appendFileSync, closeSync, fstatSync, openSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { CniError, ErrorCode } from './errors';
import { lockHolder } from './lock-holder';
import { rehearsal } from './rehearsal';

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
  /**
   * Tells from the child's stderr so far that its work is done, and with what result, before it exits; the child
   * is then left to exit on its own (it must have nothing more to say). See `iptablesRestore` and `nftApply`.
   */
  doneWhen?: (stderr: string) => RunResult | undefined;
  /** Also ask `doneWhen` this often (ms), for cues outside the child's output (a link gone from /sys, say). */
  doneWhenPollMs?: number;
  /**
   * The child's stdout goes to an unlinked temporary file instead of a pipe, read when asked for. For a long
   * output written in thousands of small writes (nft writes unbuffered: 7,000 writes for 500 rules), which
   * through a pipe wake this thread for each chunk: 14-20 ms of CPU and ~5 ms of wall time at 500 rules.
   */
  stdoutToFile?: boolean;
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
 * Logs one finished process to CNI_TS_TRACE (one line each: duration, command, exit, when it started counted
 * from this process's start; `traceNote` adds "#" lines). Processes started
 * outside `run` (the lock helper, delegated plugins) call it too, so the count per command is complete.
 */
export function traceSpawn(startedMs: number, shown: string, exit: string | number | null): void {
  const file = process.env.CNI_TS_TRACE;
  if (!file) return;
  try {
    const now = performance.now();
    appendFileSync(file, `${Math.round(now - startedMs)}ms ${shown.replace(/\n/g, '\\n')} -> ${exit} (from +${Math.round(startedMs)} ms)\n`);
  } catch {
    // Tracing must never break a request.
  }
}

/** A "#" line in CNI_TS_TRACE (a step of this process, at +ms from its start). */
export function traceNote(text: string): void {
  const file = process.env.CNI_TS_TRACE;
  if (!file) return;
  try {
    const cpu = process.cpuUsage();
    appendFileSync(file, `# ${text} at +${Math.round(performance.now())} ms (cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms)\n`);
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
  /**
   * Ends the input and leaves the process to exit on its own, unawaited, as `doneWhen` does (for a child whose
   * work is known to be done from its output so far); `finish` then resolves at once.
   */
  release(): void;
  /**
   * Resolves with `pred`'s first value over the output so far, asked as output arrives; with its last answer
   * (undefined, as a rule) when the process has ended without one.
   */
  until<T>(pred: (stdout: string, stderr: string) => T | undefined): Promise<T | undefined>;
}

export function failure(shown: string, r: RunResult & { signal?: string | null }): ExecError {
  const why = r.stderr.trim() || r.stdout.trim() || `killed by ${r.signal}`;
  return new ExecError(ErrorCode.Internal, `${shown} failed with exit status ${r.code}: ${why.split('\n').slice(0, 6).join(' | ')}`, why, { code: r.code, stdout: r.stdout, stderr: r.stderr });
}

/** The outcome of a finished process, as `run` reports it: its result, or an ExecError saying what went wrong. */
function outcome(shown: string, opts: Omit<RunOptions, 'input'>, r: RunResult & { signal?: string | null; timedOut: boolean }): RunResult | ExecError {
  const result = { code: r.code, stdout: r.stdout, stderr: r.stderr };
  if (r.timedOut) return new ExecError(ErrorCode.TryAgainLater, `${shown} did not finish within ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms and was killed`, r.stderr.trim(), result);
  if (r.code !== 0 && !opts.allowFailure) return failure(shown, r);
  return result;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Gives a child the end of its input now. `end()` leaves the pipe's shutdown to the event loop's next turn, so a
 * child that runs to the end of its input (ip -batch, nft -f, a plugin reading its config) waited for whatever
 * this thread did first: spawning the next processes, IPAM (6 ms of bridge ADD's veth batch, measured). When all
 * that was written is already in the kernel's pipe buffer, closing our end is the same end of input, at once.
 */
export function endInput(stdin: Writable, last?: string | Buffer): void {
  if (last !== undefined) stdin.write(last);
  if (stdin.writableLength === 0 && !stdin.destroyed) stdin.destroy();
  else stdin.end();
}

let outFiles = 0;

/** An unlinked file for a child's stdout; undefined (use a pipe) when none can be made. */
function outputFile(): number | undefined {
  const path = `${tmpdir()}/.cni-ts-out-${process.pid}-${++outFiles}`;
  try {
    const fd = openSync(path, 'wx+', 0o600);
    unlinkSync(path);
    return fd;
  } catch {
    return undefined;
  }
}

/** What the child wrote to its stdout file so far (read by position: the child shares the file offset). */
function readOutputFile(fd: number): string {
  const buf = Buffer.allocUnsafe(fstatSync(fd).size);
  let n = 0;
  while (n < buf.length) {
    const r = readSync(fd, buf, n, buf.length - n, n);
    if (r === 0) break;
    n += r;
  }
  return buf.toString('utf8', 0, n);
}

/**
 * Starts a process before its input is known, so its start-up overlaps other work (a plugin's IPAM call, say).
 * The caller must `finish` or `abort` it; if this process dies first, the child sees end of input.
 */
export function start(cmd: string, args: readonly string[], opts: Omit<RunOptions, 'input'> = {}, input?: string | Buffer): FedProcess {
  const [file, argv] = opts.netns ? ['nsenter', [`--net=${opts.netns}`, '--', cmd, ...args]] : [cmd, [...args]];
  const shown = commandLine(cmd, args) + (opts.netns ? ` (in netns ${opts.netns})` : '');
  const started = performance.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const finished = (r: RunResult & { signal?: string | null }): RunResult => {
    traceSpawn(started, shown, r.signal ?? r.code);
    const o = outcome(shown, opts, { ...r, timedOut });
    if (o instanceof ExecError) throw o;
    return o;
  };

  if (rehearsal.on) {
    const done = Promise.resolve().then(() => finished({ code: 0, stdout: '', stderr: '' }));
    done.catch(() => undefined);
    return { write: () => undefined, finish: () => done, abort: () => done.then(() => undefined, () => undefined), release: () => undefined, until: async () => undefined };
  }
  const outFd = opts.stdoutToFile ? outputFile() : undefined;
  let child: ChildProcessByStdio<Writable, Readable | null, Readable>;
  try {
    child = spawn(file, argv, { stdio: ['pipe', outFd ?? 'pipe', 'pipe'], env: (opts.env ?? process.env) as NodeJS.ProcessEnv }) as typeof child;
  } catch (e) {
    if (outFd !== undefined) closeSync(outFd);
    throw e;
  }
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  let outText = '';
  let outOpen = outFd !== undefined;
  const stdoutSoFar = () => {
    if (outFd === undefined) return Buffer.concat(out).toString();
    if (outOpen) outText = readOutputFile(outFd);
    return outText;
  };
  // The child has its own copy of the file; ours is read a last time and closed before the other close handlers run.
  if (outFd !== undefined) {
    child.on('close', () => {
      stdoutSoFar();
      outOpen = false;
      closeSync(outFd);
    });
  }
  let closed = false;
  child.on('close', () => (closed = true));
  // Nothing of ours waits for it any more: neither the event loop nor the plugin's exit.
  const letGo = () => {
    child.unref();
    for (const x of [child.stdin, child.stdout, child.stderr]) (x as unknown as { unref?: () => void } | null)?.unref?.();
  };
  // Set while the outcome is open; the first of the child's close and `doneWhen`'s verdict settles it.
  let settle: { resolve: (r: RunResult) => void; reject: (e: unknown) => void } | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  if (opts.doneWhen) {
    const doneWhen = opts.doneWhen;
    const check = () => {
      const r = settle && doneWhen(Buffer.concat(err).toString());
      if (!settle || !r) return;
      const { resolve, reject } = settle;
      settle = undefined;
      clearTimeout(timer);
      clearInterval(poll);
      letGo();
      traceSpawn(started, shown, `${r.code} (done; its exit not awaited)`);
      const o = outcome(shown, opts, { ...r, timedOut: false });
      if (o instanceof ExecError) reject(o);
      else resolve(o);
    };
    child.stderr.on('data', check);
    if (opts.doneWhenPollMs) poll = setInterval(check, opts.doneWhenPollMs);
  }
  child.stdin.on('error', () => {
    // The child may exit before reading its input; its exit status tells what happened.
  });
  if (input !== undefined) child.stdin.write(input);
  const done = new Promise<RunResult>((resolve, reject) => {
    settle = { resolve, reject };
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      clearInterval(poll);
      settle = undefined;
      const what = e.code === 'ENOENT' ? `${file} is not installed or not on PATH` : e.message;
      reject(new ExecError(ErrorCode.IoFailure, `cannot run ${shown}: ${what}`, ''));
    });
    child.on('close', (code, signal) => {
      if (!settle) return;
      settle = undefined;
      clearTimeout(timer);
      clearInterval(poll);
      try {
        resolve(finished({ code: code ?? 128, signal, stdout: stdoutSoFar(), stderr: Buffer.concat(err).toString() }));
      } catch (e) {
        reject(e);
      }
    });
  });
  // Failures surface through finish(); until then (input may come much later) they must not count as unhandled.
  done.catch(() => undefined);
  return {
    write: (text) => void child.stdin.write(text),
    finish: () => {
      endInput(child.stdin);
      return done;
    },
    abort: () => {
      child.kill('SIGKILL');
      return done.then(
        () => undefined,
        () => undefined,
      );
    },
    release: () => {
      endInput(child.stdin);
      if (!settle) return;
      const { resolve } = settle;
      settle = undefined;
      clearTimeout(timer);
      clearInterval(poll);
      letGo();
      traceSpawn(started, shown, '0 (done; its exit not awaited)');
      resolve({ code: 0, stdout: stdoutSoFar(), stderr: Buffer.concat(err).toString() });
    },
    until: (pred) =>
      new Promise((resolve) => {
        // Decoded as chunks come: a child that writes in hundreds of small chunks (nft through a pipe) made decoding
        // all of the output again for each of them cost ~9 ms of bridge's nftables DEL at 500 containers.
        const outDecoder = new StringDecoder('utf8');
        const errDecoder = new StringDecoder('utf8');
        let stdout = '';
        let stderr = '';
        let seenOut = 0;
        let seenErr = 0;
        const ask = () => {
          if (outFd !== undefined) stdout = stdoutSoFar();
          while (seenOut < out.length) stdout += outDecoder.write(out[seenOut++]!);
          while (seenErr < err.length) stderr += errDecoder.write(err[seenErr++]!);
          return pred(stdout, stderr);
        };
        const stop = (v: ReturnType<typeof pred>) => {
          child.stdout?.off('data', check);
          child.stderr.off('data', check);
          child.off('close', ended);
          resolve(v);
        };
        const check = () => {
          const v = ask();
          if (v !== undefined) stop(v);
        };
        const ended = () => stop(ask());
        if (closed) return resolve(ask());
        child.stdout?.on('data', check);
        child.stderr.on('data', check);
        child.on('close', ended);
        check();
      }),
  };
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { input, ...rest } = opts;
  try {
    return start(cmd, args, rest, input ?? '').finish();
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

/**
 * A table header no iptables accepts, after the payload when it removes something. With nf_tables in the kernel a
 * transaction that deleted rules or chains frees them after an RCU grace period, and closing the netlink socket
 * waits for that: iptables-restore exits 10-20 ms after its commit. It reads its input line by line and commits
 * at each COMMIT, so its complaint about this line (nothing is done for it) says the payload is in. That is
 * `doneWhen`'s cue; a failure in the payload stops it earlier and names an earlier line.
 */
const COMMITTED_MARKER = '*cni-committed';

/** Whether iptables-restore's stderr names `line` as the one that failed ("line 7 failed", "Error occurred at line: 7"). */
export const failedAtLine = (stderr: string, line: number) => new RegExp(`\\bline:? ${line}\\b`).test(stderr);

export async function iptablesRestore(family: 4 | 6, payload: string, opts: RunOptions = {}): Promise<RunResult> {
  const secs = Math.ceil((opts.timeoutMs ?? 10_000) / 1000);
  const removes = /^-[DFX] /m.test(payload);
  const body = payload.endsWith('\n') ? payload : `${payload}\n`;
  const markerLine = body.split('\n').length;
  const input = removes ? `${body}${COMMITTED_MARKER}\n` : payload;
  const doneWhen = removes ? (stderr: string) => (failedAtLine(stderr, markerLine) ? { code: 0, stdout: '', stderr: '' } : undefined) : undefined;
  try {
    // The complaint about the marker always comes before the exit, so `doneWhen` settles it; any exit status
    // that does reach `run` is the payload's.
    return await run(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush', '-w', String(secs)], { ...opts, input, doneWhen });
  } catch (e) {
    // iptables-legacy gave up waiting for the xtables lock: a retryable error that says who holds it.
    if (e instanceof ExecError && /xtables lock/i.test(e.result?.stderr ?? '')) {
      throw new ExecError(ErrorCode.TryAgainLater, `iptables-restore waited ${secs} s for ${XTABLES_LOCK}, held by ${lockHolder(XTABLES_LOCK)}`, e.details, e.result);
    }
    throw e;
  }
}

/**
 * nft's interactive mode runs each input line as one transaction and goes on to the next, so a line after the
 * script that is a syntax error (parsed only, nothing fetched or sent) is complained about once the script is
 * committed or has failed: the cue to stop waiting. Without it a removal waits ~10-20 ms more, for nft's exit:
 * closing its netlink socket waits for the RCU grace period after which the kernel frees what was deleted.
 */
const NFT_COMMIT_CUE = '%cni-committed';
/** libedit's and readline's line limits are far above this; linenoise's is 4 KiB. */
const NFT_INTERACTIVE_MAX_LINE = 4000;

/** The script's outcome from `nft -i`'s stderr once it has complained about the cue line; undefined before. */
export function interactiveOutcome(stderr: string): RunResult | undefined {
  const at = stderr.indexOf(`\n${NFT_COMMIT_CUE}\n`);
  if (at < 0) return undefined;
  const before = stderr.slice(0, Math.max(0, stderr.lastIndexOf('Error:', at))).trim();
  return { code: /(^|\n)Error:/.test(before) ? 1 : 0, stdout: '', stderr: before };
}

export interface NftApplyOptions extends RunOptions {
  /**
   * Resolve when the transaction is committed, not when nft exits (for scripts that delete or flush). The
   * script then goes to `nft -i` as one line; its error messages quote that line.
   */
  resolveAtCommit?: boolean;
  /**
   * An existing chain ("family table chain") of the one table the script works in, listed after the script so
   * that nft 1.0 fetches only that table and that chain's rules. Before a `delete`, `add rule` or `add
   * element`, nft 1.0.6 otherwise dumps every chain of every table (~60 ms with iptables-nft's 20,000
   * kube-proxy chains; busy-node DEL 64-86 -> 14-21 ms); a listing narrows the fetch when it is the last
   * command. Chains the script itself creates or deletes need not be in the fetch: nft deletes by name and
   * knows what it adds, also a table or chain the script creates. The listing goes to stdout; a missing chain
   * fails the transaction.
   */
  scopeChain?: string;
  /**
   * The script is one for which nft 1.0 fetches only the list of tables (chains written with their rules as
   * blocks, maps re-declared with their elements, flushes). Like a scoped script, it runs without waiting for
   * its turn (see nftApply).
   */
  tablesOnly?: boolean;
}

/** HOME=/dev/null: nft's interactive mode reads and rewrites $HOME/.nft.history; this way it cannot. */
const interactiveEnv = (opts: RunOptions) => ({ ...(opts.env ?? process.env), HOME: '/dev/null' });

/** The script with its scope's listing as the last command (see NftApplyOptions.scopeChain). */
const scoped = (script: string, scopeChain?: string) => (scopeChain ? `${script.trimEnd()}\nlist chain ${scopeChain}\n` : script);

/** A script as one line of `nft -i` input (one transaction). */
const oneLine = (script: string) => script.split('\n').map((l) => l.trim()).filter(Boolean).join(' ; ');

/** How a failure names the namespace, as run's messages do for every other command. */
const where = (opts: RunOptions) => (opts.netns ? ` (in netns ${opts.netns})` : '');

/** Applies an nft script as one transaction. */
export async function nftApply(script: string, opts: NftApplyOptions = {}): Promise<RunResult> {
  // Scripts that may make nft fetch the whole ruleset take turns per network namespace. nft 1.0.x dumps every
  // chain of the ruleset before an `add rule`, `add element` or `delete` (~60 ms with iptables-nft's 20,000
  // kube-proxy chains), and a dump that another commit interrupts starts over: 50 concurrent ADDs on such a node
  // kept each other dumping, single `nft -f` calls took 9 s (median) to 34 s, past our 30 s limit. The lock is the
  // namespace itself (/proc/self/ns/net of the flock process, wherever it runs): one lock per host namespace,
  // nothing to create or leave behind. Scoped and tables-only scripts fetch so little that a restart costs
  // nothing; they skip the turn, which would also be held through nft's exit (an RCU grace period after a
  // removal or re-declaration) and cost a flock process.
  const { resolveAtCommit, scopeChain, tablesOnly, ...runOpts } = opts;
  script = scoped(script, scopeChain);
  const secs = Math.max(1, Math.ceil((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000) - 2);
  const unlocked = !!scopeChain || !!tablesOnly;
  const spawnNft = (nftArgs: string[], input: string, extra: RunOptions = {}) =>
    unlocked
      ? run('nft', nftArgs, { ...runOpts, ...extra, input, allowFailure: true })
      : run('flock', ['-w', String(secs), '-E', String(NFT_LOCK_TIMED_OUT), '/proc/self/ns/net', 'nft', ...nftArgs], { ...runOpts, ...extra, input, allowFailure: true });
  const timedOut = (r: RunResult) => new ExecError(ErrorCode.TryAgainLater, `nft${where(opts)}: waited ${secs} s for the other nft transactions of this network namespace`, r.stderr.trim(), r);
  const line = oneLine(script);
  if (resolveAtCommit && line.length <= NFT_INTERACTIVE_MAX_LINE) {
    const env = interactiveEnv(opts);
    // The complaint about the cue always comes before the exit, so a verdict, if any, is `doneWhen`'s.
    let verdict: RunResult | undefined;
    const doneWhen = (stderr: string) => (verdict = interactiveOutcome(stderr));
    const r = await spawnNft(['-i'], `${line}\n${NFT_COMMIT_CUE}\n`, { env, doneWhen });
    if (r.code === NFT_LOCK_TIMED_OUT) throw timedOut(r);
    if (verdict) {
      if (verdict.code !== 0 && !opts.allowFailure) throw failure(`nft -i${where(opts)}`, verdict);
      return verdict;
    }
    // No complaint about the cue: this nft has no interactive mode (built without one). One transaction, as -f.
  }
  const r = await spawnNft(['-f', '-'], script);
  if (r.code === NFT_LOCK_TIMED_OUT) throw timedOut(r);
  if (r.code !== 0 && !opts.allowFailure) throw failure(`nft -f -${where(opts)}`, r);
  return r;
}

/**
 * One `nft -a -i` process for several scripts in turn: each is one line (one transaction, or a listing) and a
 * cue line after it. nft -i writes a command's output before it reads the next line, so a script is done once
 * nft has complained about its cue (as in nftApply's resolveAtCommit). Its stdout goes to a file: nft writes
 * unbuffered (see RunOptions.stdoutToFile). With `echo`, nft prints what each transaction added with its handle
 * (-e -a), which is how masquerade learns its rules' handles without listing the chain.
 */
export interface NftSession {
  /**
   * Runs one script, scoped as nftApply's `scopeChain` (so it takes no turn), and resolves with its outcome and
   * what it printed; `complete` says when that output is whole (through a pipe, stdout can come after stderr's
   * cue). Undefined when this nft has no interactive mode, the script is too long for one line, or nft is gone.
   */
  send(script: string, opts?: { scopeChain?: string; complete?: (stdout: string) => boolean }): Promise<RunResult | undefined>;
  /** Ends the input; nft's exit (after a removal, an RCU grace period) is not awaited. */
  close(): void;
}

export function nftSession(opts: RunOptions & { echo?: boolean } = {}): NftSession {
  const { echo, ...runOpts } = opts;
  const p = start('nft', echo ? ['-e', '-a', '-i'] : ['-a', '-i'], { ...runOpts, env: interactiveEnv(opts), allowFailure: true, stdoutToFile: true });
  let outFrom = 0;
  let errFrom = 0;
  let usable = true;
  return {
    async send(script, o = {}) {
      // After close, nothing would ever answer (the process is let go): a caller must not wait for it.
      const line = oneLine(scoped(script, o.scopeChain));
      if (!usable || line.length > NFT_INTERACTIVE_MAX_LINE) return undefined;
      p.write(`${line}\n${NFT_COMMIT_CUE}\n`);
      const r = await p.until((stdout, stderr) => {
        const at = stderr.indexOf(`\n${NFT_COMMIT_CUE}\n`, errFrom);
        if (at < 0) return undefined;
        const verdict = interactiveOutcome(stderr.slice(errFrom, at + NFT_COMMIT_CUE.length + 2))!;
        const out = stdout.slice(outFrom);
        if (verdict.code === 0 && o.complete && !o.complete(out)) return undefined;
        outFrom = stdout.length;
        errFrom = at + NFT_COMMIT_CUE.length + 2;
        return { ...verdict, stdout: out };
      });
      if (!r) usable = false;
      return r;
    },
    close: () => {
      usable = false;
      p.release();
    },
  };
}

/**
 * Lists, then applies what the listing calls for, in one nft process instead of a listing and then a
 * transaction (one process start less: the spoof check's teardown). `decide` gets the listing (null when the
 * list failed: no such table or chain) and returns the script to apply, or nothing. The script is one
 * transaction, scoped as nftApply's `scopeChain`, resolves at its commit, and throws on failure unless
 * `allowFailure`. Undefined when this nft has no interactive mode or the script is too long for one line: the
 * caller then lists and applies as two processes.
 */
export async function nftListThenApply(
  list: string,
  decide: (listing: string | null) => string | undefined,
  opts: RunOptions & { scopeChain: string },
): Promise<{ listing: string | null; applied?: RunResult } | undefined> {
  const { scopeChain, ...runOpts } = opts;
  const nft = nftSession(runOpts);
  try {
    const listed = await nft.send(list, { complete: (out) => out.endsWith('}\n') });
    if (!listed) return undefined;
    const listing = listed.code === 0 ? listed.stdout : null;
    const script = decide(listing);
    if (!script) return { listing };
    const applied = await nft.send(script, { scopeChain });
    if (!applied) return undefined;
    if (applied.code !== 0 && !opts.allowFailure) throw failure(`nft -a -i${where(opts)}`, applied);
    return { listing, applied };
  } finally {
    nft.close();
  }
}

/** flock's exit status when it gave up waiting for the namespace's nft lock (nft itself exits 0 or 1). */
const NFT_LOCK_TIMED_OUT = 75;

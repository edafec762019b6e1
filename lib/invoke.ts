/**
 * Delegation (SPEC.md "Delegated plugins"): find a plugin on CNI_PATH and run it with the same stdin and
 * environment, except CNI_COMMAND. When the plugin found is our own multi-call executable, it runs in this
 * process through the registry that cmd/ fills, with the same input, environment and result as an exec.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CniError, configError, ErrorCode, internalError } from './errors';
import { isExecutableFile } from './executable';
import { endInput, traceSpawn } from './exec';
import { runPlugin, type Command, type Plugin } from './skel';
import { parseResult, type Result } from './types/result';
import { rehearsal } from './rehearsal';

const registry = new Map<string, Plugin>();
/** cmd/ registers the plugins that live in this executable. */
export function registerInProcess(name: string, plugin: Plugin): void {
  registry.set(name, plugin);
}

/** Finds an executable named `type` in the directories of CNI_PATH. */
export function findInPath(type: string, path: readonly string[], field = 'type'): string {
  if (!type || type.includes('/') || type === '.' || type === '..') throw configError(`${field}: "${type}" is not a plugin name`);
  for (const dir of path) {
    const p = join(dir, type);
    if (isExecutableFile(p)) return p;
  }
  throw configError(`${field}: no plugin "${type}" found in CNI_PATH [${path.join(':')}]`);
}

let self: { dev: number; ino: number } | null | undefined;
function isOwnExecutable(p: string): boolean {
  // The snapshot builder is not the executable it builds: nothing may be remembered about it.
  if (rehearsal.on) return true;
  if (self === undefined) {
    try {
      const s = statSync(process.execPath);
      self = { dev: s.dev, ino: s.ino };
    } catch {
      self = null;
    }
  }
  if (!self) return false;
  try {
    const s = statSync(p);
    return s.dev === self.dev && s.ino === self.ino;
  } catch {
    return false;
  }
}

/** The plugin registered in this process for an executable found on a path, when that executable is our own. */
export function inProcessPlugin(file: string): Plugin | undefined {
  const p = registry.get(basename(file));
  return p && isOwnExecutable(file) ? p : undefined;
}

export interface DelegateOptions {
  /** stdin for the plugin (the main plugin's own stdin, normally). */
  stdin: Buffer;
  env: Record<string, string | undefined>;
  path: readonly string[];
  /** Name of the config field that chose the plugin, for error messages ("ipam.type"). */
  field?: string;
}

/**
 * Decodes what a plugin printed: its parsed stdout when it succeeded (undefined when it printed nothing); when it
 * failed, its error JSON thrown as a CniError with the plugin's own code and `who` in front of its message.
 */
export function decodePluginOutput(who: string, code: number, stdout: string, stderr = ''): unknown {
  const text = stdout.trim();
  let parsed: unknown;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw internalError(`${who}: it printed something that is not JSON (exit status ${code}): ${text.slice(0, 200)}`);
    }
  }
  if (code !== 0) {
    const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    if (e && typeof e.code === 'number' && typeof e.msg === 'string') throw new CniError(e.code, `${who}: ${e.msg}`, typeof e.details === 'string' ? e.details : '');
    const why = text || stderr.trim() || 'no error message';
    throw internalError(`${who}: exit status ${code}: ${why.slice(0, 300)}`);
  }
  return parsed;
}

function execPlugin(file: string, stdin: Buffer, env: Record<string, string | undefined>): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, [], { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stdin.on('error', () => {});
    child.on('error', (e) => reject(new CniError(ErrorCode.IoFailure, `cannot run ${file}: ${e.message}`)));
    child.on('close', (code) => {
      traceSpawn(started, `${file} (CNI_COMMAND=${env.CNI_COMMAND})`, code);
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString() });
    });
    endInput(child.stdin, stdin);
  });
}

/** Runs `type` with CNI_COMMAND=command; returns its decoded stdout (a result for ADD). */
export async function delegate(type: string, command: Command, o: DelegateOptions): Promise<unknown> {
  const file = findInPath(type, o.path, o.field);
  const env = { ...o.env, CNI_COMMAND: command };
  const who = `${o.field ?? 'plugin'} ${type}`;
  const inProc = registry.get(basename(file));
  const { code, stdout } =
    inProc && isOwnExecutable(file)
      ? await runPlugin(inProc, { stdin: o.stdin, env, stderr: (t) => process.stderr.write(t) }).then((r) => ({ code: r.exitCode, stdout: r.stdout }))
      : await execPlugin(file, o.stdin, env);
  return decodePluginOutput(who, code, stdout);
}

export async function delegateAdd(type: string, version: string, o: DelegateOptions): Promise<Result> {
  const raw = await delegate(type, 'ADD', o);
  if (raw === undefined) throw internalError(`${o.field ?? 'plugin'} ${type} returned no result for ADD`);
  return parseResult(raw, version, `${o.field ?? 'plugin'} ${type} result`);
}

export const delegateDel = (type: string, o: DelegateOptions) => delegate(type, 'DEL', o).then(() => undefined);
export const delegateCheck = (type: string, o: DelegateOptions) => delegate(type, 'CHECK', o).then(() => undefined);
export const delegateStatus = (type: string, o: DelegateOptions) => delegate(type, 'STATUS', o).then(() => undefined);
export const delegateGC = (type: string, o: DelegateOptions) => delegate(type, 'GC', o).then(() => undefined);

/**
 * Runs IPAM ADD, then `use` with its result. If `use` fails, IPAM DEL releases the reservation before the
 * error is returned (the spec requires it; the error of `use` wins over a failing DEL).
 */
export async function withIpamAdd<T>(type: string, version: string, o: DelegateOptions, use: (r: Result) => Promise<T>): Promise<T> {
  const r = await delegateAdd(type, version, o);
  try {
    return await use(r);
  } catch (e) {
    try {
      await delegateDel(type, o);
    } catch (delErr) {
      process.stderr.write(`IPAM DEL after failed ADD also failed: ${(delErr as Error).message}\n`);
    }
    throw e;
  }
}

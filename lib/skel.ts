/**
 * The protocol skeleton: one entry point a plugin calls with its command functions. It reads stdin
 * (size-capped) and the CNI_* environment, validates both per command, negotiates the version, dispatches,
 * and prints the versioned result or the error JSON. Nothing else in the tree writes to stdout.
 */
import { readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { parseCniArgs, type CniArgs } from './args';
import { asCniError, CniError, decodeError, envError, ErrorCode, ioError } from './errors';
import { traceNote } from './exec';
import { NAME_PATTERN, NetConfBase, type NetConf } from './types/netconf';
import { formatResult, parseResult, type Result } from './types/result';
import { parseWith } from './types/schema';
import { checkVersion, LATEST_VERSION, SUPPORTED_VERSIONS, type CniVersion } from './version';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type Command = (typeof COMMANDS)[number];

/** The most stdin we accept; a network config is a few KiB, a conflist with prevResult rarely 100 KiB. */
export const MAX_STDIN_BYTES = 4 * 1024 * 1024;

export interface CmdArgs {
  command: Command;
  containerID: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS, parsed; plugins pick their keys with `pickArgs`. */
  args: CniArgs;
  /** CNI_PATH split on ':'. */
  path: string[];
  /** The exact stdin bytes, for delegation. */
  stdin: Buffer;
  /** The whole config object as sent (unknown keys kept). */
  raw: Record<string, unknown>;
  /** The base fields of the config, validated. */
  conf: NetConf;
  /** The version of the request; results are printed in it. */
  version: CniVersion;
  /** prevResult converted to the newest shape, when the request carries one. */
  prevResult?: Result;
  env: Record<string, string | undefined>;
}

export interface Plugin {
  /** Shown in VERSION's `about`-style message on errors and in logs. */
  name: string;
  versions?: readonly string[];
  add(a: CmdArgs): Promise<Result>;
  del(a: CmdArgs): Promise<void>;
  check(a: CmdArgs): Promise<void>;
  /** Absent: STATUS succeeds (the plugin has nothing that can be unavailable). */
  status?(a: CmdArgs): Promise<void>;
  /** Absent: GC succeeds (the plugin keeps no state). */
  gc?(a: CmdArgs): Promise<void>;
}

export interface PluginIO {
  stdin: Buffer;
  env: Record<string, string | undefined>;
  /** Where diagnostics go (the runtime collects our stderr). */
  stderr: (text: string) => void;
}

export interface PluginOutput {
  exitCode: number;
  stdout: string;
}

/** Env variables each command needs (as the Go skel checks them). */
const REQUIRED_ENV: Record<Command, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  STATUS: ['CNI_PATH'],
  GC: ['CNI_PATH'],
  VERSION: [],
};

export function validateIfname(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > 15) return `is longer than 15 characters`;
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'may not contain "/", ":" or whitespace';
  return null;
}

function validateEnv(command: Command, env: Record<string, string | undefined>): void {
  const missing = REQUIRED_ENV[command].filter((k) => !env[k]);
  // DEL may name no netns (the runtime lost it); everything else is checked by value too.
  const problems = missing.map((k) => `${k} is missing`);
  const cid = env.CNI_CONTAINERID;
  if (cid && !NAME_PATTERN.test(cid)) problems.push(`CNI_CONTAINERID "${cid}" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$`);
  const ifname = env.CNI_IFNAME;
  const bad = ifname ? validateIfname(ifname) : null;
  if (ifname && bad) problems.push(`CNI_IFNAME "${ifname}" ${bad}`);
  if (problems.length) throw envError(`invalid environment for ${command}: ${problems.join('; ')}`);
}

function decodeConfig(stdin: Buffer): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin.toString('utf8'));
  } catch (e) {
    throw decodeError(`cannot decode network config on stdin: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw decodeError(`network config on stdin must be a JSON object (got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)})`);
  }
  return raw as Record<string, unknown>;
}

/** The request's version, or the latest when none can be read (for error JSON). */
function requestedVersion(stdin: Buffer): string {
  try {
    const v = (JSON.parse(stdin.toString('utf8')) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v ? v : '0.1.0';
  } catch {
    return LATEST_VERSION;
  }
}

/** Runs one request against a plugin with the given input; never throws. */
export async function runPlugin(plugin: Plugin, io: PluginIO): Promise<PluginOutput> {
  const supported = plugin.versions ?? SUPPORTED_VERSIONS;
  const env = io.env;
  let errVersion: string = LATEST_VERSION;
  try {
    const command = env.CNI_COMMAND as Command | undefined;
    if (!command) throw envError('CNI_COMMAND is missing (want one of ADD, DEL, CHECK, STATUS, GC, VERSION)');
    if (!COMMANDS.includes(command)) throw envError(`CNI_COMMAND "${command}" is unknown (want one of ${COMMANDS.join(', ')})`);
    if (io.stdin.length > MAX_STDIN_BYTES) throw decodeError(`network config on stdin is larger than ${MAX_STDIN_BYTES} bytes`);

    if (command === 'VERSION') {
      const asked = io.stdin.length ? requestedVersion(io.stdin) : LATEST_VERSION;
      const cniVersion = supported.includes(asked) ? asked : LATEST_VERSION;
      return { exitCode: 0, stdout: JSON.stringify({ cniVersion, supportedVersions: supported }) + '\n' };
    }

    validateEnv(command, env);
    const raw = decodeConfig(io.stdin);
    if (raw.cniVersion === undefined || raw.cniVersion === '') raw.cniVersion = '0.1.0';
    if (typeof raw.cniVersion === 'string') errVersion = raw.cniVersion;
    const conf = parseWith(NetConfBase, raw);
    const version = checkVersion(command, conf.cniVersion, supported);
    errVersion = version;
    const a: CmdArgs = {
      command,
      containerID: env.CNI_CONTAINERID ?? '',
      netns: env.CNI_NETNS ?? '',
      ifname: env.CNI_IFNAME ?? '',
      args: parseCniArgs(env.CNI_ARGS),
      path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
      stdin: io.stdin,
      raw,
      conf,
      version,
      env,
    };
    if (raw.prevResult !== undefined && raw.prevResult !== null) a.prevResult = parseResult(raw.prevResult, version);

    switch (command) {
      case 'ADD': {
        const result = await plugin.add(a);
        return { exitCode: 0, stdout: JSON.stringify(formatResult(result, version)) + '\n' };
      }
      case 'DEL':
        await plugin.del(a);
        break;
      case 'CHECK':
        await plugin.check(a);
        break;
      case 'STATUS':
        if (plugin.status) await plugin.status(a);
        break;
      case 'GC':
        if (plugin.gc) await plugin.gc(a);
        break;
    }
    return { exitCode: 0, stdout: '' };
  } catch (e) {
    const err = asCniError(e);
    if (env.CNI_TS_DEBUG && e instanceof Error && !(e instanceof CniError)) io.stderr(`${plugin.name}: ${e.stack}\n`);
    return { exitCode: 1, stdout: JSON.stringify(err.toJSON(errVersion)) + '\n' };
  }
}

/** Reads all of stdin (or `fd`) up to the cap (+1 byte, so an oversize input is detected without reading it all). */
export async function readStdin(cap = MAX_STDIN_BYTES, fd = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const buf = Buffer.allocUnsafe(65536);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
      total += n;
      if (total > cap) break;
    }
    return Buffer.concat(chunks);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EOF' || code === 'EBADF' || code === 'ENXIO') return Buffer.concat(chunks);
    if (code !== 'EAGAIN' || fd !== 0) throw e;
  }
  // stdin is non-blocking (a parent set O_NONBLOCK): fall back to the stream.
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total > cap) {
      process.stdin.destroy();
      break;
    }
  }
  return Buffer.concat(chunks);
}

/**
 * Writes all of `text` to `fd` now. process.stdout queues what a full pipe does not take at once, and
 * process.exit() drops the queue (200 KB printed before process.exit() arrived as 64 or 128 KB); a runtime that
 * reads its end late must still get the whole result.
 */
export function writeAllSync(fd: number, text: string): void {
  const buf = Buffer.from(text);
  for (let at = 0; at < buf.length; ) {
    try {
      at += writeSync(fd, buf, at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      // A non-blocking pipe that is full: wait a millisecond for the reader.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/**
 * Where a plugin process's request comes from and its result goes: the process's own stdin, environment, stdout
 * and exit, or stand-ins (the snapshot's warm-up runs this path so that its functions are compiled in it).
 */
export interface ProcessIO {
  env: NodeJS.ProcessEnv;
  stdin: number;
  stdout: number;
  exit(code: number): void;
}

const processIO = (): ProcessIO => ({ env: process.env, stdin: 0, stdout: 1, exit: (code) => process.exit(code) });

/** The process entry point for a plugin: real stdin, env and stdout; exit code set, never a stack trace. */
export async function pluginMain(plugin: Plugin, io: ProcessIO = processIO()): Promise<void> {
  let stdin: Buffer = Buffer.alloc(0);
  const command = io.env.CNI_COMMAND;
  // VERSION needs no input; do not wait on a terminal for it.
  if (!(command === 'VERSION' && isatty(io.stdin))) {
    try {
      stdin = await readStdin(MAX_STDIN_BYTES, io.stdin);
    } catch (e) {
      const err = ioError(`cannot read stdin: ${(e as Error).message}`);
      writeAllSync(io.stdout, JSON.stringify(err.toJSON(LATEST_VERSION)) + '\n');
      return io.exit(1);
    }
  }
  traceNote(`${plugin.name} ${command ?? ''} read its input`);
  // A request left waiting on nothing (a bug: a promise nothing will settle) would let Node exit 0 without a
  // word, which a runtime reads as success; say it failed instead.
  const stalled = () => {
    const err = new CniError(ErrorCode.Internal, `${plugin.name} ${command ?? ''}: internal error: the request stopped before it had a result`);
    writeAllSync(io.stdout, JSON.stringify(err.toJSON(LATEST_VERSION)) + '\n');
    io.exit(1);
  };
  process.once('beforeExit', stalled);
  const out = await runPlugin(plugin, { stdin, env: io.env, stderr: (t) => process.stderr.write(t) });
  writeAllSync(io.stdout, out.stdout);
  traceNote(`${plugin.name} ${command ?? ''} done`);
  process.off('beforeExit', stalled);
  // Everything this request started has ended and the result is written; skip Node's teardown (the build makes
  // process.exit() an exit_group: build/node-patch.cjs, item 9).
  io.exit(out.exitCode);
}

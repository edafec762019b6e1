/**
 * Throwaway network namespaces for integration tests. A test gets a "host" namespace (where plugins run, as a
 * runtime would run them on the node) and container namespaces; nothing touches the machine's own namespace.
 * Names are unique per process and call, so test files run in parallel. `withSandbox` always cleans up.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
/** Plugins under test: our dist/ by default; CNI_TEST_PLUGINS=/usr/lib/cni runs the same tests against the Go reference. */
export const PLUGIN_DIR = process.env.CNI_TEST_PLUGINS ?? join(ROOT, 'dist');
export const IS_REFERENCE = !!process.env.CNI_TEST_PLUGINS && !process.env.CNI_TEST_PLUGINS.startsWith(join(ROOT, 'dist'));
export const NOOP_PLUGIN = join(ROOT, 'build', 'out', 'noop-plugin.cjs');

let counter = 0;
/** A short unique name (netns, link and container names must stay under 15 characters for links). */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${(process.pid % 10000).toString(36)}${counter.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its status and output (never rejects on a non-zero exit). */
export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like sh, but throws with the command's output when it fails. */
export async function must(cmd: string, args: string[], opts: { input?: string } = {}): Promise<string> {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export const netnsPath = (name: string) => `/var/run/netns/${name}`;

/** A plugin's output with stdout parsed as JSON when it is JSON. */
export function withJson(r: ExecResult): PluginResult {
  let json: any;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

export interface PluginRun {
  command: string;
  conf: unknown;
  containerID?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** CNI_PATH; defaults to the plugin directory under test. */
  path?: string;
  env?: Record<string, string>;
  /** Remove these variables from the environment (to test missing ones). */
  unset?: string[];
}

export interface PluginResult extends ExecResult {
  /** stdout parsed as JSON, when it is JSON. */
  json?: any;
}

export class Sandbox {
  readonly hostNs = uniqueName('cth');
  readonly dir = mkdtempSync(join(tmpdir(), 'cni-test-'));
  private readonly namespaces: string[] = [];

  async init(): Promise<this> {
    await this.addNetns(this.hostNs);
    await must('ip', ['-n', this.hostNs, 'link', 'set', 'lo', 'up']);
    return this;
  }

  private async addNetns(name: string): Promise<void> {
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
  }

  /** A container namespace with lo up; returns its name (its path is netnsPath(name)). */
  async container(prefix = 'ctc'): Promise<string> {
    const name = uniqueName(prefix);
    await this.addNetns(name);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Runs a command inside a namespace (the host one by default). */
  exec(cmd: string, args: string[], opts: { ns?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
    return sh('ip', ['netns', 'exec', opts.ns ?? this.hostNs, cmd, ...args], opts);
  }

  /** Runs a plugin executable in the host namespace with the CNI environment, the way a runtime does. */
  async plugin(type: string, run: PluginRun, dir = PLUGIN_DIR): Promise<PluginResult> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CNI_COMMAND: run.command,
      CNI_CONTAINERID: run.containerID ?? 'ctr-test',
      CNI_NETNS: run.netns ?? '',
      CNI_IFNAME: run.ifname ?? 'eth0',
      CNI_ARGS: run.args ?? '',
      CNI_PATH: run.path ?? dir,
      ...run.env,
    };
    for (const k of run.unset ?? []) delete env[k];
    const input = typeof run.conf === 'string' ? run.conf : JSON.stringify(run.conf);
    return withJson(await sh('ip', ['netns', 'exec', this.hostNs, join(dir, type)], { input, env }));
  }

  async cleanup(): Promise<void> {
    for (const ns of this.namespaces.reverse()) await sh('ip', ['netns', 'del', ns]);
    this.namespaces.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` with a fresh sandbox and always removes it, also when `fn` throws. */
export async function withSandbox<T>(fn: (s: Sandbox) => Promise<T>): Promise<T> {
  const s = new Sandbox();
  try {
    await s.init();
    return await fn(s);
  } finally {
    await s.cleanup();
  }
}

/** True when this process can create network namespaces (root on Linux). */
export function canUseNetns(): boolean {
  return process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
}

/**
 * Runs a bridge + portmap chain (host-local under bridge) the way a runtime does: exec each plugin with the CNI
 * environment, feed bridge's result to portmap as prevResult, DEL in reverse. The caller runs inside its "host"
 * namespace (host.ts), so plugins are exec'd directly; `hostNs` is only for callers that are not (then each
 * call goes through `ip netns exec`, which costs the call a mount-namespace clone).
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';

export interface Impl {
  /** Label in tables. */
  name: string;
  /** Plugin directory (CNI_PATH). */
  dir: string;
  bridge: string;
  subnet: string;
  network: string;
  dataDir: string;
  /** Firewall backend for ours (the Go 1.1.1 plugins know only iptables). */
  backend?: 'iptables' | 'nftables';
  /** Host port base: each container gets its own port. */
  portBase: number;
  /** CNI_TS_TRACE file to count our processes. */
  trace?: string;
}

export interface Attach {
  id: string;
  netns: string;
  hostPort: number;
}

export function bridgeConf(impl: Impl) {
  return {
    cniVersion: '1.0.0',
    name: impl.network,
    type: 'bridge',
    bridge: impl.bridge,
    isGateway: true,
    ipMasq: true,
    ...(impl.backend ? { ipMasqBackend: impl.backend } : {}),
    ipam: { type: 'host-local', ranges: [[{ subnet: impl.subnet }]], dataDir: impl.dataDir },
  };
}

export function portmapConf(impl: Impl, a: Attach, prevResult?: unknown) {
  return {
    cniVersion: '1.0.0',
    name: impl.network,
    type: 'portmap',
    capabilities: { portMappings: true },
    snat: true,
    ...(impl.backend ? { backend: impl.backend } : {}),
    runtimeConfig: { portMappings: [{ hostPort: a.hostPort, containerPort: 80, protocol: 'tcp' }] },
    ...(prevResult ? { prevResult } : {}),
  };
}

function envFor(impl: Impl, command: string, a: Attach): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: a.id,
    CNI_NETNS: a.netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: impl.dir,
    ...(impl.trace ? { CNI_TS_TRACE: impl.trace } : {}),
  };
}

function execPlugin(hostNs: string | undefined, impl: Impl, type: string, command: string, a: Attach, conf: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    if (impl.trace) appendFileSync(impl.trace, `== ${type} ${command}\n`);
    const exe = `${impl.dir}/${type}`;
    const [file, args] = hostNs ? ['ip', ['netns', 'exec', hostNs, exe]] : [exe, []];
    const child = spawn(file, args, { env: envFor(impl, command, a), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${impl.name} ${type} ${command} ${a.id} failed (${code}): ${out}${err}`))));
    child.stdin.end(JSON.stringify(conf));
  });
}

/** Chain ADD; returns the final result JSON. */
export async function chainAdd(hostNs: string | undefined, impl: Impl, a: Attach): Promise<any> {
  const br = JSON.parse(await execPlugin(hostNs, impl, 'bridge', 'ADD', a, bridgeConf(impl)));
  const pm = JSON.parse(await execPlugin(hostNs, impl, 'portmap', 'ADD', a, portmapConf(impl, a, br)));
  return pm;
}

/** Chain DEL with the cached result, reverse order. */
export async function chainDel(hostNs: string | undefined, impl: Impl, a: Attach, result?: unknown): Promise<void> {
  await execPlugin(hostNs, impl, 'portmap', 'DEL', a, portmapConf(impl, a, result));
  await execPlugin(hostNs, impl, 'bridge', 'DEL', a, { ...bridgeConf(impl), ...(result ? { prevResult: result } : {}) });
}

export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

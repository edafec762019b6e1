/**
 * Runs a bridge + portmap chain (host-local under bridge) the way a runtime does: exec each plugin in the
 * implementation's host (host.ts) with the CNI environment, feed bridge's result to portmap as prevResult, DEL in
 * reverse.
 */
import { appendFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Host } from './host';

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
  /** Where its plugins run. */
  host: Host;
  /** More bridge config keys (a variant of ours). */
  bridgeExtra?: Record<string, unknown>;
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
    ...impl.bridgeExtra,
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

/** Last call's time per plugin, for callers that want the parts of a chain. */
export const lastMs: Record<string, number> = {};

async function execPlugin(impl: Impl, type: string, command: string, a: Attach, conf: unknown): Promise<string> {
  if (impl.trace) appendFileSync(impl.trace, `== ${type} ${command}\n`);
  const r = await impl.host.run(`${impl.dir}/${type}`, [], envFor(impl, command, a), JSON.stringify(conf));
  lastMs[`${type} ${command}`] = r.ms;
  if (r.code !== 0) throw new Error(`${impl.name} ${type} ${command} ${a.id} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Chain ADD; returns the final result JSON. */
export async function chainAdd(impl: Impl, a: Attach): Promise<any> {
  const br = JSON.parse(await execPlugin(impl, 'bridge', 'ADD', a, bridgeConf(impl)));
  const pm = JSON.parse(await execPlugin(impl, 'portmap', 'ADD', a, portmapConf(impl, a, br)));
  return pm;
}

/** Chain DEL with the cached result, reverse order. */
export async function chainDel(impl: Impl, a: Attach, result?: unknown): Promise<void> {
  await execPlugin(impl, 'portmap', 'DEL', a, portmapConf(impl, a, result));
  await execPlugin(impl, 'bridge', 'DEL', a, { ...bridgeConf(impl), ...(result ? { prevResult: result } : {}) });
}

export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * A bridge + host-local + portmap chain for reliability tests, run the way a runtime runs it (each plugin exec'd
 * in the sandbox's host namespace; bridge's result is portmap's prevResult; DEL in reverse order), plus a
 * snapshot of everything such a chain can leave behind.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPath, PLUGIN_DIR, type PluginResult, type Sandbox } from './netns';
import { JOURNAL_FILE } from '../../ipam/host-local/journal';

export interface ChainNet {
  name: string;
  bridge: string;
  subnet: string;
  dataDir: string;
  backend: 'iptables' | 'nftables';
  /** Extra host-local options (reclaimAfterReboot, ...). */
  ipamExtra?: Record<string, unknown>;
}

export const bridgeConf = (n: ChainNet, prevResult?: unknown) => ({
  cniVersion: '1.1.0',
  name: n.name,
  type: 'bridge',
  bridge: n.bridge,
  isGateway: true,
  ipMasq: true,
  ipMasqBackend: n.backend,
  ipam: { type: 'host-local', ranges: [[{ subnet: n.subnet }]], dataDir: n.dataDir, ...n.ipamExtra },
  ...(prevResult ? { prevResult } : {}),
});

export const portmapConf = (n: ChainNet, hostPort: number, prevResult?: unknown) => ({
  cniVersion: '1.1.0',
  name: n.name,
  type: 'portmap',
  backend: n.backend,
  capabilities: { portMappings: true },
  runtimeConfig: { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }, { hostPort, containerPort: 53, protocol: 'udp' }] },
  ...(prevResult ? { prevResult } : {}),
});

function expectOk(r: PluginResult, what: string): any {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.json;
}

export async function chainAdd(s: Sandbox, n: ChainNet, id: string, ctr: string, hostPort: number): Promise<any> {
  const base = { containerID: id, netns: netnsPath(ctr), ifname: 'eth0' };
  const br = expectOk(await s.plugin('bridge', { ...base, command: 'ADD', conf: bridgeConf(n) }), `bridge ADD ${id}`);
  return expectOk(await s.plugin('portmap', { ...base, command: 'ADD', conf: portmapConf(n, hostPort, br) }), `portmap ADD ${id}`);
}

export async function chainDel(s: Sandbox, n: ChainNet, id: string, ctr: string | null, hostPort: number, prevResult?: unknown): Promise<void> {
  const base = { containerID: id, netns: ctr ? netnsPath(ctr) : '', ifname: 'eth0' };
  expectOk(await s.plugin('portmap', { ...base, command: 'DEL', conf: portmapConf(n, hostPort, prevResult) }), `portmap DEL ${id}`);
  expectOk(await s.plugin('bridge', { ...base, command: 'DEL', conf: bridgeConf(n, prevResult) }), `bridge DEL ${id}`);
}

export async function chainGC(s: Sandbox, n: ChainNet, valid: Array<{ containerID: string; ifname: string }>): Promise<void> {
  const extra = { 'cni.dev/valid-attachments': valid };
  expectOk(await s.plugin('portmap', { command: 'GC', conf: { ...portmapConf(n, 1), ...extra } }), 'portmap GC');
  expectOk(await s.plugin('bridge', { command: 'GC', conf: { ...bridgeConf(n), ...extra } }), 'bridge GC');
}

/** Everything a chain can leave on the host: links, addresses, netfilter, reservations. */
export async function hostState(s: Sandbox, n: ChainNet): Promise<Record<string, string | string[]>> {
  // The bridge itself may stay (others may share it); veths may not.
  const links = (await s.exec('ip', ['-o', 'link'])).stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((l) => l && l !== n.bridge)
    .sort();
  const ipt = (await s.exec('iptables-save', [])).stdout.split('\n').filter((l) => l.startsWith('-A') || (l.startsWith(':') && !/^:(PREROUTING|INPUT|OUTPUT|POSTROUTING|FORWARD|CNI-HOSTPORT-\w+) /.test(l))).sort();
  const ip6t = (await s.exec('ip6tables-save', [])).stdout.split('\n').filter((l) => l.startsWith('-A')).sort();
  const nft = (await s.exec('nft', ['list', 'ruleset'])).stdout
    .split('\n')
    .map((l) => l.trim().replace(/counter packets \d+ bytes \d+ /, ''))
    // bridge's records of its masquerade rules are chains ("chain r-<instance> {").
    .filter((l) => /^(ip|tcp|udp|meta|fib|elements|chain r-|\w+ \. |[0-9a-f:]+ : |.*(dnat|masquerade|jump|goto))/.test(l))
    .sort();
  let files: string[] = [];
  try {
    files = readdirSync(join(n.dataDir, n.name)).filter((f) => f !== 'lock' && f !== JOURNAL_FILE && !f.startsWith('last_reserved_ip')).sort();
  } catch {
    files = [];
  }
  return { links, ipt, ip6t, nft, files };
}

export const DIST = PLUGIN_DIR;

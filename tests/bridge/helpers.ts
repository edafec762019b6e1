/** Shared pieces of the bridge integration tests: configs, calls, and what the host namespace holds. */
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { IS_REFERENCE, netnsPath, PLUGIN_DIR, type PluginResult, type Sandbox } from '../helpers/netns';
import { JOURNAL_FILE } from '../../ipam/host-local/journal';
import { parseRecordChains, parseRecords } from '../../lib/firewall/nftables/masquerade';

/**
 * Which host-local the tests delegate to. Ours (dist/host-local, in-process) by default;
 * BRIDGE_TEST_IPAM=go puts the Go reference's first on CNI_PATH.
 */
export const IPAM = process.env.BRIDGE_TEST_IPAM === 'go' ? '/usr/lib/cni/host-local' : undefined;

/** The installed Go plugins (v1.1.1) stop at spec 1.0.0: no GC or STATUS. */
export const HAS_1_1 = !IS_REFERENCE && !IPAM;

/** CNI_PATH for a sandbox. */
export function cniPath(s: Sandbox): string {
  if (!IPAM) return PLUGIN_DIR;
  const dir = join(s.dir, 'ipam');
  if (!existsSync(dir)) {
    mkdirSync(dir);
    symlinkSync(IPAM, join(dir, 'host-local'));
  }
  return `${dir}:${PLUGIN_DIR}`;
}

export interface ConfOpts {
  version?: string;
  name?: string;
  bridge: string;
  v4?: string;
  v6?: string;
  extra?: Record<string, unknown>;
  ipam?: Record<string, unknown> | null;
}

export function bridgeConf(s: Sandbox, o: ConfOpts): Record<string, unknown> {
  const ranges = [o.v4 ? [{ subnet: o.v4 }] : null, o.v6 ? [{ subnet: o.v6 }] : null].filter(Boolean);
  const ipam = o.ipam === null ? undefined : (o.ipam ?? { type: 'host-local', dataDir: join(s.dir, 'ipam-data'), ranges });
  return {
    cniVersion: o.version ?? (HAS_1_1 ? '1.1.0' : '1.0.0'),
    name: o.name ?? 'brtest',
    type: 'bridge',
    bridge: o.bridge,
    ...(ipam ? { ipam } : {}),
    ...o.extra,
  };
}

export function call(s: Sandbox, command: string, conf: unknown, containerID: string, ns: string | undefined, extra: { ifname?: string; args?: string; env?: Record<string, string> } = {}): Promise<PluginResult> {
  return s.plugin('bridge', {
    command,
    conf,
    containerID,
    netns: ns === undefined ? '' : netnsPath(ns),
    ifname: extra.ifname ?? 'eth0',
    path: cniPath(s),
    ...(extra.args ? { args: extra.args } : {}),
    ...(extra.env ? { env: extra.env } : {}),
  });
}

export const withPrev = (conf: Record<string, unknown>, prevResult: unknown) => ({ ...conf, prevResult });

/** Link names in the sandbox's host namespace. */
export async function hostLinks(s: Sandbox): Promise<string[]> {
  const r = await s.exec('ip', ['-o', 'link', 'show']);
  return r.stdout
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

/** Every NAT/masquerade rule and chain line in the host namespace (tests may list whole tables). */
export async function natState(s: Sandbox): Promise<string[]> {
  const out: string[] = [];
  for (const cmd of ['iptables-save', 'ip6tables-save']) {
    const r = await s.exec(cmd, ['-t', 'nat']);
    out.push(...r.stdout.split('\n').filter((l) => /CNI-/.test(l)).map((l) => `${cmd}: ${l}`));
  }
  const nft = await s.exec('nft', ['list', 'table', 'inet', 'cni_plugins_masquerade']);
  out.push(...nft.stdout.split('\n').filter((l) => /masquerade comment/.test(l)).map((l) => `nft: ${l.trim()}`));
  // Our records of where each attachment's rules are: chains, and elements of the map an older version kept.
  const records = await s.exec('nft', ['list', 'map', 'inet', 'cni_plugins_masquerade', 'masq_handles']);
  for (const x of [...parseRecordChains(nft.stdout), ...parseRecords(records.stdout)]) out.push(`nft record: ${x.instance} -> ${x.first} (${x.count})`);
  return out;
}

/** Addresses host-local has reserved for network `name` in the sandbox's data dir. */
export function reservations(s: Sandbox, name = 'brtest'): string[] {
  const dir = join(s.dir, 'ipam-data', name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f !== 'lock' && f !== JOURNAL_FILE && !f.startsWith('last_reserved_ip'));
}

/** Pings from a namespace; a few tries, since the first packets may wait for neighbour resolution. */
export async function ping(s: Sandbox, ns: string, addr: string): Promise<boolean> {
  for (let i = 0; i < 3; i++) {
    const r = await s.exec('busybox', ['ping', '-c', '1', '-W', '2', addr], { ns });
    if (r.code === 0) return true;
  }
  return false;
}

export const addrOnly = (cidr: string) => cidr.split('/')[0]!;

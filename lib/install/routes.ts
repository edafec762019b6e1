/**
 * Routes to the other nodes' pod CIDRs via their InternalIP: the simplest real pod network across nodes on one
 * L2/L3 underlay (what kindnet does). Our routes carry their own protocol number, so we find and remove only
 * ours, and never list or touch anyone else's.
 */
import { parseCidr, parseIp } from '../ip';
import { ipBatch, run } from '../exec';
import type { NodeInfo } from './k8s';

/** rtnetlink protocol number marking routes this installer owns (unassigned in /etc/iproute2/rt_protos). */
export const ROUTE_PROTO = 199;

export interface Route {
  dst: string;
  via: string;
}

/** Every other node's pod CIDR, via that node's InternalIP of the same family; nodes without one are skipped. */
export function desiredRoutes(self: string, nodes: readonly NodeInfo[]): Route[] {
  const out: Route[] = [];
  for (const n of nodes) {
    if (n.name === self) continue;
    for (const dst of n.podCidrs) {
      const fam = parseCidr(dst)!.addr.family;
      const via = n.internalIps.find((ip) => parseIp(ip)!.family === fam);
      if (via) out.push({ dst, via });
    }
  }
  return out;
}

/** The `ip -batch` lines that turn `current` into `desired` (empty when nothing changes). */
export function routeChanges(current: readonly Route[], desired: readonly Route[]): string[] {
  const key = (r: Route) => `${r.dst} ${r.via}`;
  const want = new Set(desired.map(key));
  const have = new Set(current.map(key));
  const wantDst = new Set(desired.map((r) => r.dst));
  const lines: string[] = [];
  for (const r of current) if (!want.has(key(r)) && !wantDst.has(r.dst)) lines.push(`route del ${r.dst} proto ${ROUTE_PROTO}`);
  for (const r of desired) if (!have.has(key(r))) lines.push(`route replace ${r.dst} via ${r.via} proto ${ROUTE_PROTO}`);
  return lines;
}

export async function currentRoutes(): Promise<Route[]> {
  const out: Route[] = [];
  for (const fam of ['-4', '-6']) {
    const r = await run('ip', ['-j', fam, 'route', 'show', 'proto', String(ROUTE_PROTO)]);
    const list = JSON.parse(r.stdout || '[]') as { dst: string; gateway?: string }[];
    for (const e of list) if (e.gateway) out.push({ dst: e.dst.includes('/') ? e.dst : `${e.dst}/${e.dst.includes(':') ? 128 : 32}`, via: e.gateway });
  }
  return out;
}

/** Applies the difference in one `ip -batch`; returns the lines applied. */
export async function syncRoutes(desired: readonly Route[]): Promise<string[]> {
  const lines = routeChanges(await currentRoutes(), desired);
  await ipBatch(lines);
  return lines;
}

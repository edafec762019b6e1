/**
 * route_localnet on the host interface that routes to the container, so that 127.0.0.1:hostPort, once
 * DNATed, may leave the host's loopback for the container. Found without a process: the longest matching
 * route in /proc/net/route (our namespace's main table), else the prevResult's non-sandbox interface.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { ensureSysctl } from '../../lib/net/sysctl';
import { parseCidr } from '../../lib/ip';
import type { Result } from '../../lib/types/result';

/** /proc/net/route prints addresses as host-order hex words. */
function word(hex: string): number {
  const b = Buffer.from(hex, 'hex');
  return (endianness() === 'LE' ? b.reverse() : b).readUInt32BE(0);
}

/** The interface of the longest-prefix route to `ip` (a 32-bit value) in a /proc/net/route text. */
export function routeInterface(routeTable: string, ip: number): string | undefined {
  let best: { iface: string; bits: number; metric: number } | undefined;
  for (const line of routeTable.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dst, , , , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    const m = word(mask);
    if (((ip & m) >>> 0) !== word(dst)) continue;
    const bits = m.toString(2).replace(/0/g, '').length;
    if (!best || bits > best.bits || (bits === best.bits && Number(metric) < best.metric)) best = { iface, bits, metric: Number(metric) };
  }
  return best?.iface;
}

export function hostInterface(address: string, prev: Result | undefined): string | undefined {
  const c = parseCidr(address);
  if (!c || c.addr.family !== 4) return undefined;
  let table = '';
  try {
    table = readFileSync('/proc/net/route', 'utf8');
  } catch {
    // fall through to the prevResult
  }
  return routeInterface(table, Number(c.addr.value)) ?? prev?.interfaces?.find((i) => !i.sandbox)?.name;
}

export function enableRouteLocalnet(address: string, prev: Result | undefined): void {
  const iface = hostInterface(address, prev);
  if (iface) ensureSysctl(`/proc/sys/net/ipv4/conf/${iface}/route_localnet`, 1);
}

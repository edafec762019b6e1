/**
 * Pure: validated config + prevResult -> what to ask the firewall for, which UDP conntrack entries to flush,
 * and which container address needs route_localnet on the interface that routes to it.
 */
import type { HostportRequest } from '../../lib/firewall/driver';
import { parseCidr, type Family } from '../../lib/ip';
import type { Result } from '../../lib/types/result';
import type { PortmapConfig } from './config';

/**
 * The container's first address per family, as the Go portmap picks them: addresses of a known interface
 * count only when it is the container's (in a sandbox, named CNI_IFNAME).
 */
export function containerAddresses(prev: Result | undefined, ifname: string): string[] {
  const out = new Map<Family, string>();
  const ifaces = prev?.interfaces ?? [];
  for (const ip of prev?.ips ?? []) {
    const c = parseCidr(ip.address);
    if (!c || out.has(c.addr.family)) continue;
    if (ip.interface !== undefined) {
      const i = ifaces[ip.interface];
      if (i && (i.name !== ifname || !i.sandbox)) continue;
    }
    out.set(c.addr.family, ip.address);
  }
  return [...out.values()];
}

export function hostportRequest(conf: PortmapConfig, network: string, containerID: string, ifname: string, prev: Result | undefined): HostportRequest {
  return {
    network,
    containerID,
    ifname,
    mappings: conf.mappings,
    addresses: containerAddresses(prev, ifname),
    snat: conf.snat,
    masqAll: conf.masqAll,
    markMasqBit: conf.markMasqBit,
    ...(conf.externalSetMarkChain !== undefined ? { externalSetMarkChain: conf.externalSetMarkChain } : {}),
    ...(conf.conditionsV4 ? { conditionsV4: conf.conditionsV4 } : {}),
    ...(conf.conditionsV6 ? { conditionsV6: conf.conditionsV6 } : {}),
  };
}

/** The UDP host ports whose conntrack entries must go, per family of the container (both when unknown). */
export function udpFlushes(r: HostportRequest): Array<{ family: Family; port: number }> {
  const fams = new Set<Family>(r.addresses.map((a) => parseCidr(a)!.addr.family));
  const families: Family[] = fams.size ? [...fams].sort() : [4, 6];
  const ports = [...new Set(r.mappings.filter((m) => m.protocol === 'udp').map((m) => m.hostPort))];
  return families.flatMap((family) => ports.map((port) => ({ family, port })));
}

/** The IPv4 container address whose host interface needs route_localnet (only with snat: 127.0.0.1 is masqueraded). */
export function localnetTarget(r: HostportRequest): string | undefined {
  if (!r.snat) return undefined;
  return r.addresses.find((a) => parseCidr(a)!.addr.family === 4);
}

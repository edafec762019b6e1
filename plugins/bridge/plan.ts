/**
 * Pure planning: validated config + IPAM result + what exists now -> the exact kernel changes (one `ip -batch`
 * for the host, one script for the container), the addresses to masquerade, and the result to print.
 */
import { batchWord, type BatchLine } from '../../lib/net/batch';
import type { NetnsWork, Sysctl } from '../../lib/net/netns';
import { formatCidr, formatIp, networkOf, offset, overlaps, parseCidr, type Family } from '../../lib/ip';
import { vlanGatewayAlias, vlanGatewayPeer } from '../../lib/net/names';
import type { IPConfig, Result, Route } from '../../lib/types/result';
import type { BridgeConf } from './config';

export interface AddInput {
  conf: BridgeConf;
  containerID: string;
  ifname: string;
  netns: string;
  /** Host end name chosen for this attachment. */
  hostVeth: string;
  /** Alias recording the attachment on the host end. */
  alias: string;
  /** IPAM's result, or undefined in L2-only mode. */
  ipam?: Result;
  /** The bridge as it is now (undefined: it does not exist yet). */
  bridge?: { mac: string; macPinned: boolean };
  /** The VLAN gateway interface (conf.vlanGateway) as it is now (undefined: it does not exist yet). */
  vlanGateway?: { mac: string };
  /** MACs we assign (random unless requested); the caller draws them so planning stays pure. */
  macs: { bridge: string; host: string; container: string; vlanGateway?: string };
}

export interface AddPlan {
  /** Starts with planHostAttach's lines; gateway lines follow. */
  hostBatch: BatchLine[];
  /** Host batch line index -> the gateway address it adds (to learn whether it was already there). */
  gatewayLines: Map<number, string>;
  /** `bridge -batch` lines for VLANs (only when vlan/vlanTrunk is set). */
  vlanBatch: string[];
  /**
   * When this ADD creates the VLAN gateway: the host batch line that creates it, and the `bridge -batch` lines
   * for its port, to run only if that line did create it (a concurrent ADD that did configures the port).
   */
  vlanGatewayCreate?: { line: number; vlanBatch: string[] };
  /** sysctls of our own namespace, written after the host batch. */
  hostSysctls: Sysctl[];
  hostBestEffortSysctls: Sysctl[];
  container: NetnsWork;
  /** Container addresses to masquerade (empty when ipMasq is off). */
  masquerade: string[];
  /** Gateway addresses the bridge must carry, per family (for forceAddress and CHECK). */
  gateways: string[];
  result: Result;
}

const familyOf = (cidr: string): Family => parseCidr(cidr)!.addr.family;
const DEFAULT_DST: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' };

/** The gateway of a container address when IPAM names none: the subnet's first address. */
export function defaultGateway(address: string): string {
  const c = parseCidr(address)!;
  return formatIp(offset(networkOf(c), 1n));
}

/** IPs with gateways filled in (gateway mode), routes with a default route per family (default-gateway mode). */
export function withGateways(conf: BridgeConf, ipam: Result): { ips: IPConfig[]; routes: Route[]; gateways: string[] } {
  const routes = [...(ipam.routes ?? [])];
  const gateways: string[] = [];
  const hasDefault = new Set<Family>();
  const ips = (ipam.ips ?? []).map((ip) => {
    const f = familyOf(ip.address);
    const gateway = ip.gateway ?? (conf.isGateway ? defaultGateway(ip.address) : undefined);
    if (conf.isDefaultGateway && !hasDefault.has(f)) {
      const found = routes.some((r) => r.gw !== undefined && formatCidr(parseCidr(r.dst)!) === DEFAULT_DST[f]);
      if (!found) routes.push({ dst: DEFAULT_DST[f], ...(gateway ? { gw: gateway } : {}) });
      hasDefault.add(f);
    }
    if (conf.isGateway && gateway) {
      const gw = `${gateway}/${parseCidr(ip.address)!.prefix}`;
      if (!gateways.includes(gw)) gateways.push(gw);
    }
    return { ...ip, ...(gateway ? { gateway } : {}), interface: 2 };
  });
  return { ips, routes, gateways };
}

function routeLine(r: Route, ifname: string, gwByFamily: Map<Family, string>): string {
  const gw = r.gw ?? gwByFamily.get(familyOf(r.dst));
  const parts = ['route', 'add', formatCidr(parseCidr(r.dst)!)];
  if (gw) parts.push('via', gw);
  parts.push('dev', batchWord(ifname));
  if (r.priority !== undefined) parts.push('metric', String(r.priority));
  if (r.table !== undefined) parts.push('table', String(r.table));
  if (r.scope !== undefined) parts.push('scope', String(r.scope));
  if (r.mtu !== undefined) parts.push('mtu', String(r.mtu));
  if (r.advmss !== undefined) parts.push('advmss', String(r.advmss));
  return parts.join(' ');
}

/**
 * A port's VLANs, as the reference sets them: without preserveDefaultVlan it leaves VLAN 1; an access port
 * (`vlan`) gets its VLAN as PVID, untagged; a trunk port its VLANs tagged.
 */
function portVlans(conf: Pick<BridgeConf, 'vlan' | 'vlanTrunk' | 'preserveDefaultVlan'>, port: string): string[] {
  const lines: string[] = [];
  if (conf.vlan) lines.push(`vlan add dev ${port} vid ${conf.vlan} pvid untagged`);
  for (const v of conf.vlanTrunk) lines.push(`vlan add dev ${port} vid ${v}`);
  // After the access VLAN is added, so the port is never without a PVID in between.
  if (!conf.preserveDefaultVlan && conf.vlan !== 1 && !conf.vlanTrunk.includes(1)) lines.push(`vlan del dev ${port} vid 1`);
  return lines;
}

/**
 * A bridge port needs no address, and an IPv6 link-local one on every host veth costs each later ADD: the host's
 * IPv6 routing table gains routes per port, and the kernel walks it on every link event (an ADD's kernel work
 * at 1,000 attached fell from ~18 to ~11 ms without them). Set before the port comes up; containers' IPv6 is
 * untouched (the bridge forwards at layer 2).
 */
const portWithoutIpv6Address = (port: string): BatchLine => ({ line: `link set dev ${port} addrgenmode none`, optional: true });

/**
 * An interface that IPAM gives IPv4 addresses only gets no IPv6 at all (as Docker does since 26.0), unless the
 * config says `keepContainerIPv6`. With IPv6 on, the kernel gives it a link-local address as it comes up, and it
 * sends MLD reports and router solicitations (again and again, backing off) to multicast groups the bridge floods
 * to every port: each frame is received in every other container's namespace, ~3 ms of CPU per frame at 500
 * ports here, five or more per container start, and a background of router solicitations from every container.
 * Written before the link comes up, so none of it is ever sent.
 */
const ipv4OnlyInterface = (ifname: string): Sysctl => [`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, 1];

/** The host lines that need no IPAM result (bridge and veth pair): they can run while IPAM does. */
export function planHostAttach(i: Omit<AddInput, 'ipam'>): BatchLine[] {
  const { conf } = i;
  const br = batchWord(conf.bridge);
  const veth = batchWord(i.hostVeth);
  const mtu = conf.mtu ? ` mtu ${conf.mtu}` : '';
  const lines: BatchLine[] = [];
  if (!i.bridge) {
    const vf = conf.vlan || conf.vlanTrunk.length ? ' vlan_filtering 1' : '';
    // Our own MAC, set explicitly, so the bridge keeps it while ports come and go.
    lines.push({ line: `link add name ${br}${mtu} address ${i.macs.bridge} type bridge${vf}`, okIfExists: true });
  }
  lines.push({ line: `link set dev ${br}${conf.promiscMode ? ' promisc on' : ''} up` });
  lines.push({
    line: `link add name ${veth}${mtu} address ${i.macs.host} type veth peer name ${batchWord(i.ifname)}${mtu} address ${i.macs.container} netns ${batchWord(i.netns)}`,
  });
  lines.push(portWithoutIpv6Address(veth));
  lines.push({ line: `link set dev ${veth} alias ${batchWord(i.alias)} master ${br} up` });
  if (conf.hairpinMode || conf.portIsolation) {
    lines.push({ line: `link set dev ${veth} type bridge_slave${conf.hairpinMode ? ' hairpin on' : ''}${conf.portIsolation ? ' isolated on' : ''}` });
  }
  return lines;
}

/** True when every address (CIDR, as `ip addr add` takes it) is in an `ip addr show` listing. */
export function hasAddresses(listing: string, cidrs: readonly string[]): boolean {
  const listed = new Set<string>();
  for (const m of listing.matchAll(/^\s+inet6? (\S+)/gm)) listed.add(m[1]!);
  return cidrs.every((c) => listed.has(c));
}

export function planAdd(i: AddInput): AddPlan {
  const { conf } = i;
  const br = batchWord(conf.bridge);
  const veth = batchWord(i.hostVeth);
  const ifn = batchWord(i.ifname);
  const hostBatch = planHostAttach(i);

  const vlanBatch = conf.vlan || conf.vlanTrunk.length ? portVlans(conf, veth) : [];
  const hostSysctls: Sysctl[] = [];
  const hostBestEffortSysctls: Sysctl[] = [
    [`/proc/sys/net/ipv6/conf/${conf.bridge}/accept_ra`, 0],
    [`/proc/sys/net/ipv6/conf/${i.hostVeth}/accept_ra`, 0],
  ];
  const gatewayLines = new Map<number, string>();
  const container: NetnsWork = {};
  const result: Result = {
    interfaces: [
      { name: conf.bridge, mac: i.bridge?.mac ?? i.macs.bridge },
      { name: i.hostVeth, mac: i.macs.host },
      { name: i.ifname, mac: i.macs.container, sandbox: i.netns },
    ],
  };
  let gateways: string[] = [];
  let masquerade: string[] = [];

  let vlanGatewayCreate: AddPlan['vlanGatewayCreate'];
  if (i.ipam) {
    const g = withGateways(conf, i.ipam);
    gateways = g.gateways;
    // The gateway addresses go on the bridge, or with `vlan` on the VLAN's gateway veth.
    const gwDev = conf.vlanGateway && g.gateways.length ? conf.vlanGateway : undefined;
    if (gwDev && !i.vlanGateway) {
      const peer = vlanGatewayPeer(gwDev);
      const mtu = conf.mtu ? ` mtu ${conf.mtu}` : '';
      vlanGatewayCreate = { line: hostBatch.length, vlanBatch: portVlans({ vlan: conf.vlan, vlanTrunk: [], preserveDefaultVlan: conf.preserveDefaultVlan }, peer) };
      hostBatch.push({ line: `link add name ${batchWord(gwDev)}${mtu} address ${i.macs.vlanGateway} type veth peer name ${peer}${mtu}`, okIfExists: true });
      hostBatch.push(portWithoutIpv6Address(peer));
      hostBatch.push({ line: `link set dev ${peer} alias ${batchWord(vlanGatewayAlias(gwDev))} master ${br} up` });
      hostBatch.push({ line: `link set dev ${batchWord(gwDev)} up` });
    }
    for (const gw of g.gateways) {
      gatewayLines.set(hostBatch.length, gw);
      // IPAM handed the gateway out: no duplicate address detection, so an IPv6 gateway works at once.
      hostBatch.push({ line: `addr add ${gw} dev ${batchWord(gwDev ?? conf.bridge)}${familyOf(gw) === 6 ? ' nodad' : ''}`, okIfExists: true });
    }
    if (g.gateways.length && !gwDev && i.bridge && !i.bridge.macPinned) hostBatch.push({ line: `link set dev ${br} address ${i.bridge.mac}` });
    if (gwDev) result.interfaces!.push({ name: gwDev, mac: i.vlanGateway?.mac ?? i.macs.vlanGateway! });
    const fams = new Set(g.gateways.map(familyOf));
    if (fams.has(4)) hostSysctls.push(['/proc/sys/net/ipv4/ip_forward', 1]);
    if (fams.has(6)) hostSysctls.push(['/proc/sys/net/ipv6/conf/all/forwarding', 1]);

    const v6 = g.ips.some((ip) => familyOf(ip.address) === 6);
    const c = `/proc/sys/net/ipv6/conf/${i.ifname}`;
    container.bestEffortSysctls = [
      ...(conf.enableDad ? ([[`${c}/enhanced_dad`, 1], [`${c}/accept_dad`, 1]] as Sysctl[]) : ([[`${c}/accept_dad`, 0]] as Sysctl[])),
      [`/proc/sys/net/ipv4/conf/${i.ifname}/arp_notify`, 1],
      ...(v6 ? ([[`${c}/keep_addr_on_down`, 1]] as Sysctl[]) : []),
    ];
    if (v6) container.sysctls = [['/proc/sys/net/ipv6/conf/lo/disable_ipv6', 0], [`${c}/disable_ipv6`, 0]];
    else if (!conf.keepContainerIPv6) container.bestEffortSysctls.push(ipv4OnlyInterface(i.ifname));
    const gwByFamily = new Map<Family, string>();
    for (const ip of g.ips) if (ip.gateway && !gwByFamily.has(familyOf(ip.address))) gwByFamily.set(familyOf(ip.address), ip.gateway);
    container.batch = [
      `link set dev ${ifn} up`,
      ...g.ips.map((ip) => `addr add ${ip.address} dev ${ifn}`),
      ...g.routes.map((r) => routeLine(r, i.ifname, gwByFamily)),
    ];
    result.ips = g.ips;
    if (g.routes.length) result.routes = g.routes;
    if (i.ipam.dns) result.dns = i.ipam.dns;
    if (conf.ipMasq) masquerade = g.ips.map((ip) => ip.address);
  } else if (!conf.disableContainerInterface) {
    container.batch = [`link set dev ${ifn} up`];
  }
  if (conf.dns) result.dns = conf.dns;

  return { hostBatch, gatewayLines, vlanBatch, ...(vlanGatewayCreate ? { vlanGatewayCreate } : {}), hostSysctls, hostBestEffortSysctls, container, masquerade, gateways, result };
}

/** Addresses of a bridge that conflict with a gateway we just added (reference semantics of forceAddress). */
export function conflictingAddresses(bridgeAddrs: string[], gateways: string[]): string[] {
  const out: string[] = [];
  for (const gw of gateways) {
    const g = parseCidr(gw)!;
    for (const a of bridgeAddrs) {
      const c = parseCidr(a);
      if (!c || c.addr.family !== g.addr.family || formatCidr(c) === formatCidr(g) || gateways.includes(formatCidr(c))) continue;
      // IPv4: one address per bridge. IPv6: several, as long as their subnets do not overlap.
      const clash = g.addr.family === 4 || overlaps(c, g);
      if (clash && !out.includes(formatCidr(c))) out.push(formatCidr(c));
    }
  }
  return out;
}

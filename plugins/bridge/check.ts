/**
 * CHECK: the attachment in prevResult is still what ADD made. Host side from /sys (no process), container side
 * from one `ip -j -d` batch inside the netns, then IPAM's CHECK and the masquerade rules. Every failure says
 * what is wrong.
 */
import { CniError, ErrorCode, configError } from '../../lib/errors';
import { firewall } from '../../lib/firewall/select';
import { delegateCheck } from '../../lib/invoke';
import { canonicalIp, formatCidr, parseCidr } from '../../lib/ip';
import { batchWord } from '../../lib/net/batch';
import { linkAddresses, linkState } from '../../lib/net/link';
import { inNetns, netnsExists } from '../../lib/net/netns';
import { spoofCheckPresent } from '../../lib/net/spoofcheck';
import type { CmdArgs } from '../../lib/skel';
import type { Result } from '../../lib/types/result';
import { loadConf } from './config';
import { containerAddresses } from './del';

const broken = (m: string) => new CniError(ErrorCode.Internal, m);

interface IpLink {
  ifindex: number;
  link_index?: number;
  address?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: Array<{ local: string; prefixlen: number }>;
}
interface IpRoute {
  dst: string;
  gateway?: string;
}

/** Route destinations as `ip -j route` prints them ("default", "192.0.2.5" for a host route). */
function routeKey(dst: string): string {
  if (dst === 'default') return dst;
  const c = parseCidr(dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`);
  if (!c) return dst;
  return c.prefix === 0 ? 'default' : formatCidr(c);
}

async function containerSide(netns: string, ifname: string): Promise<{ link: IpLink; routes: IpRoute[] }> {
  const ifn = batchWord(ifname);
  let out: string;
  try {
    out = (await inNetns(netns, { ipOptions: ['-j', '-d'], batch: [`addr show dev ${ifn}`, `route show table all dev ${ifn}`] })).stdout;
  } catch (e) {
    throw broken(`container interface "${ifname}" in netns ${netns} is not there: ${(e as Error).message}`);
  }
  const [links, routes] = out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown[]);
  const link = (links as IpLink[] | undefined)?.[0];
  if (!link) throw broken(`container interface "${ifname}" in netns ${netns} is not there`);
  return { link, routes: (routes as IpRoute[] | undefined) ?? [] };
}

/** In gateway mode each container address's gateway must be on the bridge (or the VLAN gateway), with its prefix. */
async function checkGateways(dev: string, prev: Result, ifname: string): Promise<void> {
  const ifs = prev.interfaces ?? [];
  const wanted = (prev.ips ?? [])
    .filter((ip) => ip.gateway && (ip.interface === undefined || ifs[ip.interface]?.name === ifname))
    .map((ip) => `${canonicalIp(ip.gateway!)}/${parseCidr(ip.address)!.prefix}`);
  if (!wanted.length) return;
  if (!linkState(dev)) throw broken(`gateway interface "${dev}" is not there`);
  const have = new Set((await linkAddresses(dev)).map((c) => formatCidr(parseCidr(c)!)));
  const missing = wanted.filter((w) => !have.has(formatCidr(parseCidr(w)!)));
  if (missing.length) throw broken(`"${dev}" lacks gateway address ${missing.join(', ')} (has ${[...have].join(', ') || 'none'})`);
}

export async function check(a: CmdArgs): Promise<void> {
  const conf = loadConf(a.raw, a.args);
  const prev: Result | undefined = a.prevResult;
  if (!prev) throw configError('prevResult: required for CHECK (got nothing)');
  if (conf.ipamType) await delegateCheck(conf.ipamType, { stdin: a.stdin, env: a.env, path: a.path, field: 'ipam.type' });

  const ifs = prev.interfaces ?? [];
  const brPrev = ifs.find((i) => i.name === conf.bridge && !i.sandbox);
  const contPrev = ifs.find((i) => i.name === a.ifname && i.sandbox === a.netns);
  if (!brPrev) throw broken(`prevResult has no interface for bridge "${conf.bridge}"`);
  if (!contPrev) throw broken(`prevResult has no interface "${a.ifname}" with sandbox ${a.netns}`);

  const br = linkState(conf.bridge);
  if (!br) throw broken(`bridge "${conf.bridge}" is not there`);
  if (!br.isBridge) throw broken(`"${conf.bridge}" is not a bridge`);
  if (brPrev.mac && brPrev.mac !== br.mac) throw broken(`bridge "${conf.bridge}" has MAC ${br.mac}, prevResult says ${brPrev.mac}`);
  if (br.promisc !== conf.promiscMode) throw broken(`bridge "${conf.bridge}" promiscuous mode is ${br.promisc ? 'on' : 'off'}, config says ${conf.promiscMode ? 'on' : 'off'}`);

  if (!netnsExists(a.netns)) throw broken(`netns ${a.netns} is not there`);
  const { link, routes } = await containerSide(a.netns, a.ifname);
  if (link.linkinfo?.info_kind !== 'veth') throw broken(`container interface "${a.ifname}" is a ${link.linkinfo?.info_kind ?? 'device'}, not a veth`);
  if (contPrev.mac && link.address !== contPrev.mac) throw broken(`container interface "${a.ifname}" has MAC ${link.address}, prevResult says ${contPrev.mac}`);

  const hostPrev = ifs.find((i) => i !== brPrev && i !== contPrev && !i.sandbox);
  if (!hostPrev) throw broken('prevResult has no host veth interface');
  const host = linkState(hostPrev.name);
  if (!host) throw broken(`host veth "${hostPrev.name}" is not there`);
  if (host.master !== conf.bridge) throw broken(`host veth "${hostPrev.name}" is not a port of bridge "${conf.bridge}" (master: ${host.master ?? 'none'})`);
  if (host.iflink !== link.ifindex || link.link_index !== host.ifindex) throw broken(`host veth "${hostPrev.name}" is not the peer of container interface "${a.ifname}"`);
  if (hostPrev.mac && hostPrev.mac !== host.mac) throw broken(`host veth "${hostPrev.name}" has MAC ${host.mac}, prevResult says ${hostPrev.mac}`);

  const have = new Set((link.addr_info ?? []).map((x) => `${canonicalIp(x.local)}/${x.prefixlen}`));
  for (const addr of containerAddresses(prev, a.ifname)) {
    const c = parseCidr(addr)!;
    if (!have.has(formatCidr(c))) throw broken(`container interface "${a.ifname}" lacks address ${addr} (has ${[...have].join(', ') || 'none'})`);
  }
  for (const r of prev.routes ?? []) {
    const key = routeKey(r.dst);
    const ok = routes.some((x) => routeKey(x.dst) === key && (!r.gw || (x.gateway !== undefined && canonicalIp(x.gateway) === canonicalIp(r.gw))));
    if (!ok) throw broken(`container route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} on "${a.ifname}" is missing`);
  }

  if (conf.isGateway) await checkGateways(conf.vlanGateway ?? conf.bridge, prev, a.ifname);

  if (conf.ipMasq && conf.ipamType) {
    await firewall(conf.ipMasqBackend).checkMasquerade({ network: conf.network, containerID: a.containerID, ifname: a.ifname, addresses: containerAddresses(prev, a.ifname) });
  }
  if (conf.macSpoofChk && !(await spoofCheckPresent(a.containerID, a.ifname))) throw broken(`macspoofchk rules of ${a.containerID}/${a.ifname} are missing`);
}

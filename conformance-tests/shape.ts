/**
 * The shape SPEC.md gives an ADD result in each version, checked strictly (lib/types/result.ts reads leniently,
 * as a plugin must; a certifier must not). Returns the IPs in one form so cases can go on to check the kernel.
 */
import { parseCidr, parseIp } from '../lib/ip';
import { check, show } from './harness';
import { cmp } from './probe';

export interface Expect {
  version: string;
  /** `ipam`: a delegated IPAM result (no interfaces, no ips[].interface). */
  kind: 'interface' | 'ipam';
  netns?: string;
  ifname?: string;
  /** Address families the request asked for. */
  families: Array<4 | 6>;
}

export interface Checked {
  ips: Array<{ address: string; gateway?: string; family: 4 | 6 }>;
  /** The container interface (interface results only). */
  sandboxIface?: { name: string; mac?: string };
}

const isObj = (x: unknown): x is Record<string, any> => x !== null && typeof x === 'object' && !Array.isArray(x);
const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

function cidr(text: unknown, where: string): 4 | 6 {
  const c = typeof text === 'string' ? parseCidr(text) : null;
  check(c, `${where}: expected an address in CIDR notation (got ${show(text)})`);
  return c.addr.family;
}
function ip(text: unknown, where: string): void {
  check(typeof text === 'string' && parseIp(text), `${where}: expected an IP address (got ${show(text)})`);
}
function routes(list: unknown, where: string): void {
  if (list === undefined) return;
  check(Array.isArray(list), `${where}: expected an array (got ${show(list)})`);
  list.forEach((r, i) => {
    check(isObj(r), `${where}[${i}]: expected an object`);
    cidr(r.dst, `${where}[${i}].dst`);
    if (r.gw !== undefined) ip(r.gw, `${where}[${i}].gw`);
  });
}

export function checkResult(res: unknown, e: Expect): Checked {
  check(isObj(res), `result is not a JSON object: ${show(res)}`);
  check(res.cniVersion === e.version, `result.cniVersion is ${show(res.cniVersion)}, the request asked for ${e.version}`);
  if (res.dns !== undefined) check(isObj(res.dns), `result.dns: expected an object (got ${show(res.dns)})`);
  if (cmp(e.version, '0.3.0') < 0) return legacy(res, e);

  check(!('ip4' in res) && !('ip6' in res), `a ${e.version} result has no ip4/ip6 (got ${show(res)})`);
  const ifaces: unknown[] = res.interfaces ?? [];
  check(Array.isArray(ifaces), `result.interfaces: expected an array (got ${show(res.interfaces)})`);
  if (e.kind === 'ipam') check(res.interfaces === undefined, `an IPAM result has no interfaces (got ${show(res.interfaces)})`);
  ifaces.forEach((f, i) => {
    check(isObj(f) && typeof f.name === 'string' && f.name, `result.interfaces[${i}]: expected an object with a name (got ${show(f)})`);
    if (f.mac !== undefined) check(typeof f.mac === 'string' && (f.mac === '' || MAC.test(f.mac)), `result.interfaces[${i}].mac: not a MAC (${show(f.mac)})`);
    if (f.sandbox !== undefined) check(typeof f.sandbox === 'string', `result.interfaces[${i}].sandbox: expected a string`);
    if (f.mtu !== undefined) check(Number.isInteger(f.mtu) && f.mtu >= 0, `result.interfaces[${i}].mtu: expected a uint (got ${show(f.mtu)})`);
  });
  check(Array.isArray(res.ips) && res.ips.length > 0, `result.ips: expected a non-empty array (got ${show(res.ips)})`);
  const out: Checked = { ips: [] };
  let sandboxIdx: number | undefined;
  if (e.kind === 'interface') {
    sandboxIdx = ifaces.findIndex((f: any) => f.sandbox === e.netns && f.name === e.ifname);
    check(sandboxIdx >= 0, `result.interfaces has no ${e.ifname} with sandbox ${e.netns} (got ${show(ifaces)})`);
    out.sandboxIface = ifaces[sandboxIdx] as Checked['sandboxIface'];
  }
  res.ips.forEach((x: unknown, i: number) => {
    const w = `result.ips[${i}]`;
    check(isObj(x), `${w}: expected an object`);
    const fam = cidr(x.address, `${w}.address`);
    if (x.gateway !== undefined) ip(x.gateway, `${w}.gateway`);
    if (cmp(e.version, '1.0.0') < 0) check(x.version === String(fam), `${w}.version: a ${e.version} result says "${fam}" for ${x.address} (got ${show(x.version)})`);
    else check(!('version' in x), `${w}.version: a ${e.version} result has no version field (got ${show(x.version)})`);
    if (e.kind === 'ipam') check(x.interface === undefined, `${w}.interface: an IPAM result has none (got ${show(x.interface)})`);
    else {
      check(Number.isInteger(x.interface) && x.interface >= 0 && x.interface < ifaces.length, `${w}.interface: ${show(x.interface)} is not an index into interfaces (${ifaces.length})`);
      check(x.interface === sandboxIdx, `${w}.interface: points to ${show(ifaces[x.interface])}, not the container interface`);
    }
    out.ips.push({ address: x.address, gateway: x.gateway, family: fam });
  });
  routes(res.routes, 'result.routes');
  for (const f of e.families) check(out.ips.some((x) => x.family === f), `result.ips has no IPv${f} address (got ${show(res.ips)})`);
  return out;
}

function legacy(res: Record<string, any>, e: Expect): Checked {
  check(!('ips' in res) && !('interfaces' in res), `a ${e.version} result has ip4/ip6, not ips/interfaces (got ${show(res)})`);
  const out: Checked = { ips: [] };
  for (const f of [4, 6] as const) {
    const x = res[`ip${f}`];
    if (x === undefined) {
      check(!e.families.includes(f), `result.ip${f} is missing (the request asked for an IPv${f} address)`);
      continue;
    }
    check(isObj(x), `result.ip${f}: expected an object (got ${show(x)})`);
    check(cidr(x.ip, `result.ip${f}.ip`) === f, `result.ip${f}.ip: ${x.ip} is not IPv${f}`);
    if (x.gateway !== undefined) ip(x.gateway, `result.ip${f}.gateway`);
    routes(x.routes, `result.ip${f}.routes`);
    out.ips.push({ address: x.ip, gateway: x.gateway, family: f });
  }
  return out;
}

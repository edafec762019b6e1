/**
 * Address math on bigint values, with our own parser and formatter. ip-num (a dev dependency) is the oracle
 * our unit tests compare against; it is not in the executable because it costs ~7 ms to load per run and
 * cannot be evaluated into a V8 startup snapshot. Formatting must match Go's net.IP.String() byte for byte
 * (RFC 5952: compressed, lowercase, IPv4-mapped in dotted form) because host-local names its files by it.
 */

export type Family = 4 | 6;
export interface Addr {
  readonly family: Family;
  readonly value: bigint;
}
/** An address with its prefix length; `addr` keeps host bits ("10.1.0.5/16" is an interface address). */
export interface Cidr {
  readonly addr: Addr;
  readonly prefix: number;
}

export const bitsOf = (f: Family) => (f === 4 ? 32 : 128);

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function parseV4(s: string): bigint | null {
  const m = V4.exec(s);
  if (!m) return null;
  return BigInt(((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]));
}

function parseGroups(part: string): number[] | null {
  if (part === '') return [];
  const out: number[] = [];
  for (const g of part.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    out.push(parseInt(g, 16));
  }
  return out;
}

function parseV6(s: string): bigint | null {
  // A trailing dotted quad stands for the last two groups ("::ffff:192.0.2.1").
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return null;
    const head = parseGroups(s.slice(0, dbl));
    const rest = parseGroups(s.slice(dbl + 2));
    if (!head || !rest) return null;
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return null;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  } else {
    const all = parseGroups(s);
    if (!all) return null;
    groups = all;
    if (groups.length !== 8) return null;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

export function parseIp(text: string): Addr | null {
  if (typeof text !== 'string' || text.length > 45) return null;
  if (text.includes(':')) {
    const v = parseV6(text);
    return v === null ? null : { family: 6, value: v };
  }
  const v = parseV4(text);
  return v === null ? null : { family: 4, value: v };
}

export function parseCidr(text: string): Cidr | null {
  if (typeof text !== 'string') return null;
  const slash = text.indexOf('/');
  if (slash < 0) return null;
  const addr = parseIp(text.slice(0, slash));
  const p = text.slice(slash + 1);
  if (!addr || !/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > bitsOf(addr.family)) return null;
  return { addr, prefix };
}

export function formatIp(a: Addr): string {
  if (a.family === 4) {
    const v = Number(a.value);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  // Go prints IPv4-mapped addresses in dotted form.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return formatIp({ family: 4, value: a.value & 0xffffffffn });
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export const formatCidr = (c: Cidr) => `${formatIp(c.addr)}/${c.prefix}`;

/** Canonical text of an address given as text (throws nothing; returns the input if it does not parse). */
export function canonicalIp(text: string): string {
  const a = parseIp(text);
  return a ? formatIp(a) : text;
}

const hostMask = (c: Cidr) => (1n << BigInt(bitsOf(c.addr.family) - c.prefix)) - 1n;

export const networkOf = (c: Cidr): Addr => ({ family: c.addr.family, value: c.addr.value & ~hostMask(c) });
export const lastOf = (c: Cidr): Addr => ({ family: c.addr.family, value: networkOf(c).value | hostMask(c) });
export const hasHostBits = (c: Cidr) => (c.addr.value & hostMask(c)) !== 0n;
export const sameAddr = (a: Addr, b: Addr) => a.family === b.family && a.value === b.value;
export const contains = (c: Cidr, a: Addr) => a.family === c.addr.family && networkOf({ addr: a, prefix: c.prefix }).value === networkOf(c).value;
export const offset = (a: Addr, n: bigint): Addr => ({ family: a.family, value: a.value + n });
export const compareAddr = (a: Addr, b: Addr) => (a.family !== b.family ? a.family - b.family : a.value < b.value ? -1 : a.value > b.value ? 1 : 0);
/** The subnet a CIDR belongs to, as text ("10.1.0.5/16" -> "10.1.0.0/16"). */
export const subnetText = (c: Cidr) => formatCidr({ addr: networkOf(c), prefix: c.prefix });
export const overlaps = (a: Cidr, b: Cidr) => contains(a, networkOf(b)) || contains(b, networkOf(a));

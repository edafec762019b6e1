/**
 * Address ranges and range sets, pure: canonicalizing a configured range (the Go plugin's defaults and checks),
 * membership, overlap, and the capacity STATUS needs. A range set is the unit that yields one address per ADD.
 */
import { configError } from '../../lib/errors';
import { bitsOf, formatCidr, formatIp, hasHostBits, lastOf, networkOf, parseCidr, parseIp, type Addr, type Cidr } from '../../lib/ip';

/** A range as written in the config ("" counts as absent, as Go's net.IP decoding treats it). */
export interface RangeInput {
  subnet?: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface Range {
  /** The network (host bits clear) and its prefix length. */
  subnet: Cidr;
  start: Addr;
  end: Addr;
  gateway: Addr;
}
export type RangeSet = Range[];

const V4_MAPPED = 0xffff00000000n;

/** Go canonicalizes IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) to IPv4; so do we. */
export function canonical(a: Addr): Addr {
  return a.family === 6 && a.value >> 32n === V4_MAPPED >> 32n ? { family: 4, value: a.value & 0xffffffffn } : a;
}

/** Parses an address given with or without a prefix length ("192.0.2.5" or "192.0.2.5/24"), as Go's ip.ParseIP does. */
export function parseRequestedIp(text: string): Addr | null {
  const a = text.includes('/') ? parseCidr(text)?.addr : parseIp(text);
  return a ? canonical(a) : null;
}

export const rangeText = (r: Range) => `${formatIp(r.start)}-${formatIp(r.end)}`;
export const rangeSetText = (s: RangeSet) => s.map(rangeText).join(',');
const inSubnet = (r: Range, a: Addr) => a.family === r.subnet.addr.family && networkOf({ addr: a, prefix: r.subnet.prefix }).value === r.subnet.addr.value;

export function rangeContains(r: Range, a: Addr): boolean {
  return inSubnet(r, a) && a.value >= r.start.value && a.value <= r.end.value;
}

export const rangeFor = (s: RangeSet, a: Addr): Range | undefined => s.find((r) => rangeContains(r, a));

const familyOf = (s: RangeSet) => s[0]!.subnet.addr.family;

export function rangesOverlap(a: Range, b: Range): boolean {
  return a.subnet.addr.family === b.subnet.addr.family && a.start.value <= b.end.value && b.start.value <= a.end.value;
}

export function setsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((r) => b.some((r1) => rangesOverlap(r, r1)));
}

function optionalIp(where: string, field: keyof RangeInput, text: string | undefined): Addr | undefined {
  if (text === undefined || text === '') return undefined;
  const a = parseIp(text);
  if (!a) throw configError(`${where}.${field}: must be an IP address (got ${JSON.stringify(text)})`);
  return canonical(a);
}

/** Validates one range and fills in the defaults: gateway = network+1, start = network+1, end = last usable. */
export function canonicalizeRange(input: RangeInput, where: string): Range {
  if (input.subnet === undefined || input.subnet === '') throw configError(`${where}.subnet: is required (got nothing)`);
  const parsed = parseCidr(input.subnet);
  if (!parsed) throw configError(`${where}.subnet: must be a network with prefix length, like 192.0.2.0/24 (got ${JSON.stringify(input.subnet)})`);
  const bits = bitsOf(parsed.addr.family);
  if (parsed.prefix > bits - 2) {
    throw configError(`${where}.subnet: network ${input.subnet} is too small to allocate from (the smallest is /${bits - 2})`);
  }
  if (hasHostBits(parsed)) {
    const net = formatCidr({ addr: networkOf(parsed), prefix: parsed.prefix });
    throw configError(`${where}.subnet: ${input.subnet} has host bits set (the network is ${net})`);
  }
  const subnet = parsed;
  const fam = subnet.addr.family;
  const partial = { subnet, start: { family: fam, value: 0n }, end: lastOf(subnet) } as Range;
  const check = (field: keyof RangeInput, a: Addr | undefined): a is Addr => {
    if (!a) return false;
    if (!inSubnet(partial, a)) throw configError(`${where}.${field}: ${formatIp(a)} is not in subnet ${input.subnet}`);
    return true;
  };
  const gateway = optionalIp(where, 'gateway', input.gateway) ?? { family: fam, value: subnet.addr.value + 1n };
  if (gateway.family !== fam) throw configError(`${where}.gateway: ${formatIp(gateway)} is not of the same address family as subnet ${input.subnet}`);
  const startIn = optionalIp(where, 'rangeStart', input.rangeStart);
  const start = check('rangeStart', startIn) ? startIn : { family: fam, value: subnet.addr.value + 1n };
  const endIn = optionalIp(where, 'rangeEnd', input.rangeEnd);
  // Go leaves the IPv4 broadcast address out; IPv6 has none.
  const end = check('rangeEnd', endIn) ? endIn : { family: fam, value: lastOf(subnet).value - (fam === 4 ? 1n : 0n) };
  if (end.value < start.value) throw configError(`${where}.rangeEnd: ${formatIp(end)} is before rangeStart ${formatIp(start)}`);
  return { subnet, start, end, gateway };
}

/** Validates a range set: not empty, one family, no overlaps inside it. */
export function canonicalizeRangeSet(inputs: RangeInput[], label: string, where: string[]): RangeSet {
  if (!inputs.length) throw configError(`${label}: a range set must hold at least one range (got [])`);
  const set = inputs.map((r, i) => canonicalizeRange(r, where[i]!));
  set.forEach((r, i) => {
    if (i > 0 && r.subnet.addr.family !== familyOf(set)) {
      throw configError(`${where[i]}.subnet: ${formatCidr(r.subnet)} mixes address families with ${formatCidr(set[0]!.subnet)} in the same range set`);
    }
  });
  for (let i = 0; i < set.length; i++) {
    for (let j = i + 1; j < set.length; j++) {
      if (rangesOverlap(set[i]!, set[j]!)) {
        throw configError(`${where[j]}: range ${rangeText(set[j]!)} overlaps ${rangeText(set[i]!)} (${where[i]})`);
      }
    }
  }
  return set;
}

/** How many addresses a range set can hand out (the gateway is never handed out). */
export function capacity(s: RangeSet): bigint {
  return s.reduce((n, r) => n + (r.end.value - r.start.value + 1n) - (rangeContains(r, r.gateway) ? 1n : 0n), 0n);
}

export const setFamily = familyOf;

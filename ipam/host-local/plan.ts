/**
 * The allocation decisions, pure: which range set a requested address belongs to, whether an attachment
 * already holds an address in a set, and the round-robin order of candidates. The disk is read once before
 * (a Set of taken file names) so the walk never touches the file system per candidate.
 */
import { configError, internalError } from '../../lib/errors';
import { formatIp, parseIp, sameAddr, type Addr } from '../../lib/ip';
import { canonical, rangeContains, rangeFor, rangeSetText, type Range, type RangeSet } from './range';

export interface Requested {
  addr: Addr;
  /** Where the request came from, for messages ("CNI_ARGS IP", "runtimeConfig.ips[0]"). */
  from: string;
}

/** Gives each requested address to the first range set that contains it; every request must land in its own set. */
export function assignRequested(sets: RangeSet[], requested: Requested[]): Map<number, Requested> {
  const out = new Map<number, Requested>();
  for (const req of requested) {
    const idx = sets.findIndex((s) => rangeFor(s, req.addr));
    const ip = formatIp(req.addr);
    if (idx < 0) {
      throw configError(`${req.from}: requested address ${ip} is not in any range (${sets.map(rangeSetText).join('; ')})`);
    }
    const r = rangeFor(sets[idx]!, req.addr)!;
    if (sameAddr(r.gateway, req.addr)) throw configError(`${req.from}: requested address ${ip} is the gateway of range ${rangeSetText([r])}`);
    const prior = out.get(idx);
    // The same address asked for twice (say CNI_ARGS and runtimeConfig) is one request, as in Go.
    if (prior && sameAddr(prior.addr, req.addr)) continue;
    if (prior) {
      throw configError(`${req.from}: requested address ${ip} is in the same range set (${idx}) as ${formatIp(prior.addr)} from ${prior.from}; one address per range set`);
    }
    out.set(idx, req);
  }
  return out;
}

/** The owner key the Go plugin writes into a reservation file. */
export const ownerKey = (containerID: string, ifname: string) => `${containerID.trim()}\r\n${ifname}`;

/** The names (reservation files) whose address lies in `set`. */
export function namesInSet(set: RangeSet, names: readonly string[]): string[] {
  return names.filter((name) => {
    const a = parseIp(name);
    return !!a && set.some((r) => rangeContains(r, canonical(a)));
  });
}

export function duplicateError(idx: number, held: string[], containerID: string, ifname: string) {
  return internalError(`range set ${idx}: ${held.join(', ')} is already allocated to container ${containerID} interface ${ifname}; duplicate allocation is not allowed`);
}

export interface Candidate {
  addr: Addr;
  range: Range;
}

/**
 * Every allocatable address of the set once, in the Go plugin's round-robin order: from the address after
 * `last` (when it lies in the set) through the end of its range, the following ranges, wrapping around to
 * `last` itself; otherwise from the first range's start. Gateways are skipped.
 */
export function* candidates(set: RangeSet, last?: Addr): Generator<Candidate> {
  const fam = set[0]!.subnet.addr.family;
  let ri = 0;
  let v = set[0]!.start.value;
  const at = last ? set.findIndex((r) => rangeContains(r, last)) : -1;
  if (at >= 0) {
    ri = at;
    v = last!.value;
    if (v === set[ri]!.end.value) {
      ri = (ri + 1) % set.length;
      v = set[ri]!.start.value;
    } else v++;
  }
  const startRi = ri;
  const startV = v;
  do {
    const r = set[ri]!;
    if (v !== r.gateway.value || r.gateway.family !== fam) yield { addr: { family: fam, value: v }, range: r };
    if (v === r.end.value) {
      ri = (ri + 1) % set.length;
      v = set[ri]!.start.value;
    } else v++;
  } while (ri !== startRi || v !== startV);
}

/** Candidates whose file name is not taken; the caller claims each with an exclusive create until one succeeds. */
export function* freeCandidates(set: RangeSet, last: Addr | undefined, taken: ReadonlySet<string>): Generator<Candidate & { name: string }> {
  for (const c of candidates(set, last)) {
    const name = formatIp(c.addr);
    if (!taken.has(name)) yield { ...c, name };
  }
}

/** How many addresses of the set are reserved (for STATUS). */
export function countReserved(set: RangeSet, reserved: Iterable<Addr>): bigint {
  let n = 0n;
  for (const a of reserved) if (set.some((r) => rangeContains(r, a) && !sameAddr(r.gateway, a))) n++;
  return n;
}

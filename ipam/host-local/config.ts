/**
 * host-local's configuration: the `ipam` object of the network config plus the runtime's requests
 * (CNI_ARGS IP, args.cni.ips, runtimeConfig.ips, runtimeConfig.ipRanges). Everything is validated here,
 * before anything touches the disk; errors are code 7 naming the field and value.
 */
import { isAbsolute, normalize } from 'node:path';
import * as z from 'zod/mini';
import { pickArgs, type CniArgs } from '../../lib/args';
import { configError } from '../../lib/errors';
import { RouteSchema, type Route } from '../../lib/types/result';
import { parseWith } from '../../lib/types/schema';
import { versionAtLeast } from '../../lib/version';
import type { Requested } from './plan';
import { canonicalizeRangeSet, parseRequestedIp, setFamily, setsOverlap, type RangeInput, type RangeSet } from './range';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

const RangeSchema = z.looseObject({
  subnet: z.optional(z.string()),
  rangeStart: z.optional(z.string()),
  rangeEnd: z.optional(z.string()),
  gateway: z.optional(z.string()),
});
const RangeSetsSchema = z.array(z.array(RangeSchema));

export const IpamSchema = z.looseObject({
  type: z.optional(z.string()),
  ...RangeSchema.shape,
  ranges: z.optional(RangeSetsSchema),
  routes: z.optional(z.array(RouteSchema)),
  dataDir: z.optional(z.string()),
  resolvConf: z.optional(z.string()),
  /** Ours: release reservations made before the last reboot on the first ADD after it. */
  reclaimAfterReboot: z.optional(z.boolean()),
});

/** The parts of the network config around `ipam` that host-local reads. */
const NetSchema = z.looseObject({
  ipam: z.optional(z.unknown()),
  runtimeConfig: z.optional(z.looseObject({ ips: z.optional(z.array(z.string())), ipRanges: z.optional(RangeSetsSchema) })),
  args: z.optional(z.looseObject({ cni: z.optional(z.looseObject({ ips: z.optional(z.array(z.string())) })) })),
});

export interface IpamConfig {
  network: string;
  dataDir: string;
  /** In the Go plugin's order (runtimeConfig.ipRanges, legacy top-level range, ipam.ranges): index N owns last_reserved_ip.N. */
  sets: RangeSet[];
  routes: Route[];
  resolvConf?: string;
  reclaimAfterReboot: boolean;
}

function ipamSection(raw: Record<string, unknown>): z.infer<typeof IpamSchema> {
  if (raw.ipam === undefined || raw.ipam === null) throw configError('ipam: is required for host-local (got nothing)');
  return parseWith(IpamSchema, raw.ipam, 'ipam');
}

/** dataDir must be an absolute path: a relative one would depend on the runtime's working directory. */
function dataDirOf(ipam: z.infer<typeof IpamSchema>): string {
  const d = ipam.dataDir === undefined || ipam.dataDir === '' ? DEFAULT_DATA_DIR : ipam.dataDir;
  if (!isAbsolute(d) || d.includes('\0')) throw configError(`ipam.dataDir: must be an absolute path (got ${JSON.stringify(d)})`);
  return normalize(d);
}

/** Just enough to find the reservations (DEL and GC): they must work even when the ranges changed since ADD. */
export function loadStoreConfig(raw: Record<string, unknown>, network: string): { network: string; dataDir: string } {
  return { network, dataDir: dataDirOf(ipamSection(raw)) };
}

export function loadConfig(raw: Record<string, unknown>, network: string, cniVersion: string): IpamConfig {
  const ipam = ipamSection(raw);
  const net = parseWith(NetSchema, raw);
  const inputs: { ranges: RangeInput[]; label: string; where: string[] }[] = [];
  const add = (ranges: RangeInput[], label: string) => inputs.push({ ranges, label, where: ranges.map((_, j) => `${label}[${j}]`) });
  net.runtimeConfig?.ipRanges?.forEach((s, i) => add(s, `runtimeConfig.ipRanges[${i}]`));
  // Go takes the legacy top-level range only when it names a subnet.
  if (ipam.subnet !== undefined && ipam.subnet !== '') inputs.push({ ranges: [ipam], label: 'ipam', where: ['ipam'] });
  ipam.ranges?.forEach((s, i) => add(s, `ipam.ranges[${i}]`));
  if (!inputs.length) throw configError('ipam.ranges: no IP ranges specified (set ipam.ranges or ipam.subnet)');

  const sets = inputs.map(({ ranges, label, where }) => canonicalizeRangeSet(ranges, label, where));
  const perFamily = { 4: 0, 6: 0 };
  for (const s of sets) perFamily[setFamily(s)]++;
  if ((perFamily[4] > 1 || perFamily[6] > 1) && !versionAtLeast(cniVersion, '0.3.0')) {
    throw configError(`ipam.ranges: cniVersion ${cniVersion} allows one range set per address family (got ${perFamily[4]} IPv4, ${perFamily[6]} IPv6)`);
  }
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      if (setsOverlap(sets[i]!, sets[j]!)) throw configError(`${inputs[j]!.label}: range set ${j} overlaps range set ${i} (${inputs[i]!.label})`);
    }
  }
  return {
    network,
    dataDir: dataDirOf(ipam),
    sets,
    routes: ipam.routes ?? [],
    ...(ipam.resolvConf ? { resolvConf: ipam.resolvConf } : {}),
    reclaimAfterReboot: ipam.reclaimAfterReboot ?? false,
  };
}

/** The addresses the runtime asked for, in the Go plugin's order: CNI_ARGS IP, args.cni.ips, runtimeConfig.ips. */
export function requestedIps(raw: Record<string, unknown>, args: CniArgs): Requested[] {
  const net = parseWith(NetSchema, raw);
  const texts: { text: string; from: string }[] = [];
  const { IP } = pickArgs(args, ['IP']);
  if (IP !== undefined && IP !== '') texts.push({ text: IP, from: 'CNI_ARGS IP' });
  net.args?.cni?.ips?.forEach((text, i) => texts.push({ text, from: `args.cni.ips[${i}]` }));
  net.runtimeConfig?.ips?.forEach((text, i) => texts.push({ text, from: `runtimeConfig.ips[${i}]` }));
  return texts.map(({ text, from }) => {
    const addr = parseRequestedIp(text);
    if (!addr) throw configError(`${from}: must be an IP address, optionally with prefix length (got ${JSON.stringify(text)})`);
    return { addr, from };
  });
}

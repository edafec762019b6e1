/**
 * Results in every spec version. Plugins build the newest form (`Result`); `parseResult` reads any version
 * (a prevResult, a delegated plugin's output) and `formatResult` prints the version the request asked for.
 */
import * as z from 'zod/mini';
import { configError } from '../errors';
import { parseCidr, parseIp } from '../ip';
import { compareVersions, versionAtLeast } from '../version';
import { parseWith } from './schema';

const cidrString = z.string().check(z.refine((s) => parseCidr(s) !== null, { error: 'must be an address with prefix length, like 192.0.2.5/24' }));
const ipString = z.string().check(z.refine((s) => parseIp(s) !== null, { error: 'must be an IP address' }));

export const InterfaceSchema = z.looseObject({
  name: z.string(),
  mac: z.optional(z.string()),
  mtu: z.optional(z.number()),
  sandbox: z.optional(z.string()),
  socketPath: z.optional(z.string()),
  pciID: z.optional(z.string()),
});
export const IPConfigSchema = z.looseObject({
  address: cidrString,
  gateway: z.optional(ipString),
  interface: z.optional(z.int().check(z.gte(0))),
});
export const RouteSchema = z.looseObject({
  dst: cidrString,
  gw: z.optional(ipString),
  mtu: z.optional(z.int()),
  advmss: z.optional(z.int()),
  priority: z.optional(z.int()),
  table: z.optional(z.int()),
  scope: z.optional(z.int()),
});
export const DNSSchema = z.looseObject({
  nameservers: z.optional(z.array(z.string())),
  domain: z.optional(z.string()),
  search: z.optional(z.array(z.string())),
  options: z.optional(z.array(z.string())),
});

/** 0.3.0 and later (0.3.x/0.4.0 add `version` to each IP, which we accept and drop). */
const CurrentResultSchema = z.looseObject({
  cniVersion: z.optional(z.string()),
  interfaces: z.optional(z.array(InterfaceSchema)),
  ips: z.optional(z.array(z.looseObject({ ...IPConfigSchema.shape, version: z.optional(z.enum(['4', '6'])) }))),
  routes: z.optional(z.array(RouteSchema)),
  dns: z.optional(DNSSchema),
});

const LegacyIPSchema = z.looseObject({
  ip: cidrString,
  gateway: z.optional(ipString),
  routes: z.optional(z.array(z.looseObject({ dst: cidrString, gw: z.optional(ipString) }))),
});
/** 0.1.0 / 0.2.0. */
const LegacyResultSchema = z.looseObject({
  cniVersion: z.optional(z.string()),
  ip4: z.optional(LegacyIPSchema),
  ip6: z.optional(LegacyIPSchema),
  dns: z.optional(DNSSchema),
});

export type Interface = z.infer<typeof InterfaceSchema>;
export type IPConfig = z.infer<typeof IPConfigSchema>;
export type Route = z.infer<typeof RouteSchema>;
export type DNS = z.infer<typeof DNSSchema>;
/** The newest (1.1.0) result shape; `cniVersion` is added when printed. */
export interface Result {
  interfaces?: Interface[];
  ips?: IPConfig[];
  routes?: Route[];
  dns?: DNS;
}

const isLegacy = (v: string) => compareVersions(v, '0.3.0') < 0;

/**
 * Reads a result of any version into the newest shape. `version` is the version the result claims
 * (its own cniVersion, else the request's).
 */
export function parseResult(raw: unknown, version: string, where = 'prevResult'): Result {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configError(`${where}: expected an object (got ${JSON.stringify(raw)})`);
  const own = (raw as { cniVersion?: unknown }).cniVersion;
  const v = typeof own === 'string' && own ? own : version;
  const legacyShape = 'ip4' in raw || 'ip6' in raw;
  if (isLegacy(v) || (legacyShape && !('ips' in raw))) {
    const r = parseWith(LegacyResultSchema, raw, where);
    const out: Result = { ips: [], routes: [] };
    for (const fam of [r.ip4, r.ip6]) {
      if (!fam) continue;
      out.ips!.push({ address: fam.ip, ...(fam.gateway ? { gateway: fam.gateway } : {}) });
      for (const rt of fam.routes ?? []) out.routes!.push({ dst: rt.dst, ...(rt.gw ? { gw: rt.gw } : {}) });
    }
    if (r.dns && Object.keys(r.dns).length) out.dns = r.dns;
    if (!out.routes!.length) delete out.routes;
    return out;
  }
  const r = parseWith(CurrentResultSchema, raw, where);
  const out: Result = {};
  if (r.interfaces) out.interfaces = r.interfaces;
  if (r.ips) out.ips = r.ips.map(({ version: _v, ...ip }) => ip);
  if (r.routes) out.routes = r.routes;
  if (r.dns) out.dns = r.dns;
  const n = out.interfaces?.length ?? 0;
  out.ips?.forEach((ip, i) => {
    if (ip.interface !== undefined && ip.interface >= n) {
      throw configError(`${where}.ips[${i}].interface: index ${ip.interface} points past interfaces (there are ${n})`);
    }
  });
  return out;
}

const familyOf = (cidr: string) => (parseCidr(cidr)!.addr.family === 4 ? '4' : '6');
const dropEmptyDns = (dns: DNS | undefined) => (dns && Object.values(dns).some((x) => x !== undefined && (!Array.isArray(x) || x.length)) ? dns : undefined);

/** Prints a result in the requested version. */
export function formatResult(result: Result, version: string): Record<string, unknown> {
  const dns = dropEmptyDns(result.dns);
  if (isLegacy(version)) {
    const out: Record<string, unknown> = { cniVersion: version };
    for (const fam of ['4', '6'] as const) {
      const ip = result.ips?.find((i) => familyOf(i.address) === fam);
      if (!ip) continue;
      const routes = (result.routes ?? []).filter((r) => familyOf(r.dst) === fam).map((r) => ({ dst: r.dst, ...(r.gw ? { gw: r.gw } : {}) }));
      out[`ip${fam}`] = { ip: ip.address, ...(ip.gateway ? { gateway: ip.gateway } : {}), ...(routes.length ? { routes } : {}) };
    }
    out.dns = dns ?? {};
    return out;
  }
  const v1 = versionAtLeast(version, '1.0.0');
  const v11 = versionAtLeast(version, '1.1.0');
  const out: Record<string, unknown> = { cniVersion: version };
  if (result.interfaces?.length) {
    out.interfaces = v11 ? result.interfaces : result.interfaces.map(({ mtu: _m, socketPath: _s, pciID: _p, ...i }) => i);
  }
  if (result.ips?.length) {
    out.ips = result.ips.map((ip) => (v1 ? ip : { version: familyOf(ip.address), ...ip }));
  }
  if (result.routes?.length) {
    out.routes = v11 ? result.routes : result.routes.map(({ mtu: _m, advmss: _a, priority: _p, table: _t, scope: _s, ...r }) => r);
  }
  // The Go types always print `dns` (a struct is never omitted), so runtimes expect the key.
  out.dns = dns ?? {};
  return out;
}

/** Converts a result from its own version to another through the newest shape. */
export const convertResult = (raw: unknown, fromVersion: string, toVersion: string) =>
  formatResult(parseResult(raw, fromVersion, 'result'), toVersion);

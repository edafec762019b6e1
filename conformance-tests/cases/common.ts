/** Helpers the case files share: error checks, configs, runtime-style request shapes. */
import type { PluginResult } from '../../tests/helpers/netns';
import type { Env } from '../env';
import { check, show, Skip } from '../harness';
import type { PluginSet } from '../probe';
import { cmp } from '../probe';

export const ALL_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
export const NET = 'confnet';
export const V4 = '198.51.100.0/24';
export const V6 = '2001:db8:c0::/64';
/** The plain IPAM subnet (host-local cases). */
export const IPAM4 = '192.0.2.0/24';

/**
 * An error as SPEC.md "Error" describes it: non-zero exit and a JSON object on stdout with a numeric code and a
 * message. `codes` narrows the code; `names` must appear in the message (the spec asks code 4 to name the variable).
 */
export function expectError(r: PluginResult, what: string, opts: { codes?: number[]; names?: string[] } = {}): { code: number; msg: string; cniVersion?: string } {
  check(r.code !== 0, `${what}: exit status 0, expected a failure (stdout ${show(r.stdout)})`);
  const j = r.json;
  check(j && typeof j === 'object' && !Array.isArray(j), `${what}: no error JSON on stdout (exit ${r.code}, stdout ${show(r.stdout)}, stderr ${show(r.stderr)})`);
  check(Number.isInteger(j.code), `${what}: error.code is not an integer (${show(j)})`);
  check(typeof j.msg === 'string', `${what}: error.msg is not a string (${show(j)})`);
  if (j.details !== undefined) check(typeof j.details === 'string', `${what}: error.details is not a string (${show(j)})`);
  if (j.cniVersion !== undefined) check(typeof j.cniVersion === 'string', `${what}: error.cniVersion is not a string (${show(j)})`);
  if (opts.codes) check(opts.codes.includes(j.code), `${what}: error code ${j.code}, expected ${opts.codes.join(' or ')} (${show(j)})`);
  for (const n of opts.names ?? []) check(`${j.msg} ${j.details ?? ''}`.includes(n), `${what}: the message does not name ${n} (${show(j)})`);
  return j;
}

/** The request version a case uses: the highest all its plugins list, at least `min`; skips otherwise. */
export function versionFor(set: PluginSet, plugins: string[], min = '0.1.0'): string {
  const v = set.common(plugins, min);
  if (!v) throw new Skip(`${plugins.join(' + ')}: VERSION lists no common version >= ${min}`);
  return v;
}

export function needVersion(set: PluginSet, plugins: string[], v: string): void {
  const missing = plugins.filter((p) => !set.supports(p, v));
  if (missing.length) throw new Skip(`${missing.join(', ')}: VERSION does not list ${v}`);
}

export interface IpamOpts {
  families?: Array<4 | 6>;
  /** Restrict the IPv4 pool to [start, end]. */
  range?: [string, string];
  subnet4?: string;
}

export function hostLocal(env: Env, o: IpamOpts = {}) {
  const fams = o.families ?? [4];
  const ranges: unknown[] = [];
  if (fams.includes(4)) ranges.push([{ subnet: o.subnet4 ?? V4, ...(o.range ? { rangeStart: o.range[0], rangeEnd: o.range[1] } : {}) }]);
  if (fams.includes(6)) ranges.push([{ subnet: V6 }]);
  return { type: 'host-local', ranges, dataDir: `${env.dir}/ipam` };
}

export interface BridgeOpts extends IpamOpts {
  ipMasq?: boolean;
  hairpinMode?: boolean;
  extra?: Record<string, unknown>;
}

export function bridgeConf(env: Env, version: string, o: BridgeOpts = {}) {
  return {
    cniVersion: version,
    name: NET,
    type: 'bridge',
    bridge: 'cni-conf0',
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: o.ipMasq ?? false,
    ...(o.hairpinMode ? { hairpinMode: true } : {}),
    ...o.extra,
    ipam: hostLocal(env, o),
  };
}

export function ipamConf(env: Env, version: string, o: IpamOpts = {}) {
  return { cniVersion: version, name: NET, type: 'host-local', ipam: hostLocal(env, { subnet4: IPAM4, ...o }) };
}

/** The config a runtime sends on CHECK/DEL: the ADD config plus the cached result as prevResult (0.4.0+). */
export function withPrev<T extends { cniVersion: string }>(conf: T, prev: unknown): T {
  return cmp(conf.cniVersion, '0.4.0') >= 0 && prev ? { ...conf, prevResult: prev } : conf;
}

/** The bare address of an "a.b.c.d/len" string. */
export const bare = (cidr: string) => cidr.split('/')[0]!;

export function firstIp(result: any, family: 4 | 6 = 4): string {
  const list: any[] = result.ips ?? [result.ip4, result.ip6].filter(Boolean).map((x: any) => ({ address: x.ip }));
  const hit = list.find((x) => (family === 4 ? !x.address.includes(':') : x.address.includes(':')));
  check(hit, `result has no IPv${family} address: ${show(result)}`);
  return bare(hit.address);
}

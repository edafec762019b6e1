/**
 * The bridge network config: its zod schema (types come from it) and the cross-field rules, all checked before
 * anything is touched. Every problem is code 7 naming the field and its value.
 */
import * as z from 'zod/mini';
import { pickArgs, type CniArgs } from '../../lib/args';
import { configError } from '../../lib/errors';
import type { BackendName } from '../../lib/firewall/driver';
import { macProblem, normalizeMac } from '../../lib/net/mac';
import { validateIfname } from '../../lib/skel';
import type { DNS } from '../../lib/types/result';
import { msg, parseWith } from '../../lib/types/schema';

const ifname = z.string().check(z.refine((s) => validateIfname(s) === null, msg('must be an interface name: 1 to 15 characters, no "/", ":" or whitespace')));
const mac = z.string().check(z.refine((s) => macProblem(s) === null, msg('must be a unicast MAC address like 02:42:c0:00:02:05')));
const vlanId = z.int().check(z.gte(1), z.lte(4094));

const VlanTrunkItem = z.looseObject({ minID: z.optional(vlanId), maxID: z.optional(vlanId), id: z.optional(vlanId) });

const BridgeConfSchema = z.looseObject({
  name: z.string(),
  bridge: z.optional(ifname),
  isGateway: z.optional(z.boolean()),
  isDefaultGateway: z.optional(z.boolean()),
  forceAddress: z.optional(z.boolean()),
  ipMasq: z.optional(z.boolean()),
  ipMasqBackend: z.optional(z.enum(['iptables', 'nftables'])),
  mtu: z.optional(z.int().check(z.refine((v) => v === 0 || (v >= 68 && v <= 65535), msg('must be 0 (the default) or between 68 and 65535')))),
  hairpinMode: z.optional(z.boolean()),
  promiscMode: z.optional(z.boolean()),
  vlan: z.optional(z.int().check(z.gte(0), z.lte(4094))),
  vlanTrunk: z.optional(z.array(VlanTrunkItem)),
  preserveDefaultVlan: z.optional(z.boolean()),
  enabledad: z.optional(z.boolean()),
  macspoofchk: z.optional(z.boolean()),
  disableContainerInterface: z.optional(z.boolean()),
  portIsolation: z.optional(z.boolean()),
  keepContainerIPv6: z.optional(z.boolean()),
  ipam: z.optional(z.looseObject({ type: z.optional(z.string()) })),
  args: z.optional(z.looseObject({ cni: z.optional(z.looseObject({ mac: z.optional(mac) })) })),
  runtimeConfig: z.optional(z.looseObject({ mac: z.optional(mac) })),
});

/** The config with defaults applied and derived values resolved. */
export interface BridgeConf {
  network: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  ipMasqBackend?: BackendName;
  mtu?: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** Access VLAN of the port (0: none). */
  vlan: number;
  /** Trunk VLANs of the port, sorted, without duplicates. */
  vlanTrunk: number[];
  /** In gateway mode with `vlan`: the interface `<bridge>.<vlan>` that carries the VLAN's gateway addresses. */
  vlanGateway?: string;
  preserveDefaultVlan: boolean;
  enableDad: boolean;
  macSpoofChk: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /**
   * Ours: a container interface that IPAM gives no IPv6 address keeps the kernel's IPv6 (a link-local address,
   * MLD reports, router solicitations), as the Go plugin leaves it. Off by default: see plan.ts.
   */
  keepContainerIPv6: boolean;
  /** IPAM plugin type; undefined is L2-only mode. */
  ipamType?: string;
  /** `dns` of the config when it sets anything (it overrides IPAM's). */
  dns?: DNS;
  /** Requested container MAC: runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC. */
  mac?: string;
}

function trunkVlans(items: z.infer<typeof BridgeConfSchema>['vlanTrunk']): number[] {
  const ids = new Set<number>();
  (items ?? []).forEach((t, i) => {
    const where = `vlanTrunk[${i}]`;
    if ((t.minID === undefined) !== (t.maxID === undefined)) {
      throw configError(`${where}: minID and maxID must be given together (got ${JSON.stringify(t)})`);
    }
    if (t.minID !== undefined && t.maxID !== undefined) {
      if (t.maxID < t.minID) throw configError(`${where}: minID ${t.minID} is greater than maxID ${t.maxID}`);
      for (let v = t.minID; v <= t.maxID; v++) ids.add(v);
    }
    if (t.id !== undefined) ids.add(t.id);
  });
  return [...ids].sort((a, b) => a - b);
}

const dnsSet = (d: DNS | undefined) => !!d && (d.nameservers !== undefined || d.search !== undefined || d.options !== undefined || !!d.domain);

/**
 * `forAdd`: also enforce the rules about combining settings. Other commands only need the settings to be
 * readable: a DEL must be able to clean up after any config, or a runtime retries it forever.
 */
export function loadConf(raw: Record<string, unknown>, args: CniArgs, forAdd = false): BridgeConf {
  const c = parseWith(BridgeConfSchema, raw);
  const envMac = pickArgs(args, ['MAC', 'IP'] as const).MAC;
  if (envMac !== undefined && macProblem(envMac)) throw configError(`CNI_ARGS MAC: ${macProblem(envMac)} (got "${envMac}")`);
  const mac = c.runtimeConfig?.mac ?? c.args?.cni?.mac ?? envMac;

  const ipam = c.ipam ?? {};
  const ipamType = ipam.type || undefined;
  if (forAdd && !ipamType && Object.keys(ipam).some((k) => k !== 'type')) {
    throw configError(`ipam.type: required when ipam has settings (got ipam ${JSON.stringify(ipam).slice(0, 80)}); use "ipam": {} for L2-only mode`);
  }
  if (forAdd && ipamType && c.disableContainerInterface) {
    throw configError(`disableContainerInterface: cannot be true when ipam.type is set (got ipam.type "${ipamType}")`);
  }
  if (forAdd && c.hairpinMode && c.promiscMode) throw configError('hairpinMode and promiscMode: cannot both be true');
  const vlanTrunk = trunkVlans(c.vlanTrunk);
  const vlan = c.vlan ?? 0;
  const bridge = c.bridge ?? 'cni0';
  const isGateway = !!(c.isGateway || c.isDefaultGateway);
  // An access port or a trunk port, not both (as the reference).
  if (forAdd && vlan && vlanTrunk.length) throw configError(`vlan and vlanTrunk: cannot be set together (got vlan ${vlan} and vlanTrunk ${vlanTrunk.join(',')})`);
  // In gateway mode a VLAN's gateway lives on a veth named <bridge>.<vlan> whose peer is an access port of the VLAN.
  const vlanGateway = isGateway && vlan ? `${bridge}.${vlan}` : undefined;
  if (forAdd && vlanGateway && vlanGateway.length > 15) {
    throw configError(`bridge: "${bridge}" is too long for the VLAN gateway interface "${vlanGateway}" (interface names have at most 15 characters)`);
  }
  const dns = raw.dns as DNS | undefined;
  return {
    network: c.name,
    bridge,
    isGateway,
    isDefaultGateway: !!c.isDefaultGateway,
    forceAddress: !!c.forceAddress,
    ipMasq: !!c.ipMasq,
    ...(c.ipMasqBackend ? { ipMasqBackend: c.ipMasqBackend } : {}),
    ...(c.mtu ? { mtu: c.mtu } : {}),
    hairpinMode: !!c.hairpinMode,
    promiscMode: !!c.promiscMode,
    vlan,
    vlanTrunk,
    ...(vlanGateway ? { vlanGateway } : {}),
    // The reference's default: a VLAN port keeps its membership of the default VLAN 1.
    preserveDefaultVlan: c.preserveDefaultVlan ?? true,
    enableDad: !!c.enabledad,
    macSpoofChk: !!c.macspoofchk,
    disableContainerInterface: !!c.disableContainerInterface,
    portIsolation: !!c.portIsolation,
    keepContainerIPv6: !!c.keepContainerIPv6,
    ...(ipamType ? { ipamType } : {}),
    ...(dnsSet(dns) ? { dns } : {}),
    ...(mac ? { mac: normalizeMac(mac) } : {}),
  };
}

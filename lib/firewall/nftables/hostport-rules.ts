/**
 * Pure planning of the nftables host-port rules: the exact `nft -f -` scripts for ADD, DEL and GC.
 *
 * One table of our own, `inet cni_portmap`, for both families. Host ports are looked up in verdict maps, so the
 * per-packet cost and the cost of ADD/DEL do not grow with the number of containers: ADD adds map elements
 * and a chain, DEL deletes exactly those (by key, no handles, no listing), in one transaction even when repeated.
 *
 *   prerouting / output (nat hooks):  fib daddr type local jump hostports
 *   hostports:  ip daddr . meta l4proto . th dport vmap @hostip4     (mappings with a hostIP)
 *               ip6 daddr . meta l4proto . th dport vmap @hostip6
 *               meta l4proto . th dport vmap @ports                  (any local address)
 *   dn-<hash>:  per mapping and family: hairpin and localhost (IPv4) `jump setmark-<bit>`, dnat; each rule's
 *               comment names it
 *   setmark-<bit>:  meta mark set meta mark | <bit>
 *   masq-<bit> (postrouting): meta mark & <bit> == <bit> masquerade
 * An ADD first sends only the attachment's chain, rules and elements (re-declaring existing chains leaves the
 * kernel objects to free after an RCU grace period, which nft waits for at its exit, ~14 ms). Its rules jump to
 * setmark-<bit>, which the skeleton creates together with masq-<bit>, so the transaction fails as a whole when
 * the skeleton for this mark is missing; then the full script (skeleton included) is sent.
 * Map elements carry the comment "net=<network> id=<containerID>" so GC finds an attachment's elements.
 */
import { formatIp, subnetText, type Cidr, type Family } from '../../ip';
import type { HostportRequest } from '../driver';
import { attachmentHash, containerCidr, mappingDestination } from '../iptables/hostport-rules';

export const TABLE = 'inet cni_portmap';

/**
 * A table of ours that holds one empty chain and nothing else, made with the skeleton. nft 1.0 narrows a script's
 * fetch to the chain its last listing names, but fetches every element of every map in that chain's table: a DEL
 * scoped to `hostports` read all three port maps (46 KB at 500 containers, +4 ms). Listed instead, this chain
 * makes nft fetch ~300 bytes at any size; the script then declares the maps it touches, as nft has none of ours
 * in its cache.
 */
export const SCOPE_TABLE = 'inet cni_portmap_scope';
export const SCOPE_CHAIN = `${SCOPE_TABLE} scope`;
const SCOPE_COMMENT = 'Empty: portmap lists its chain so that nft fetches nothing else';
const scopeDecl = [`add table ${SCOPE_TABLE} { comment "${SCOPE_COMMENT}" ; }`, `add chain ${SCOPE_CHAIN}`];

export const containerChain = (network: string, containerID: string) => `dn-${attachmentHash(network, containerID, 21)}`;

/** nft caps comments at 128 bytes. */
export const ownerComment = (network: string, containerID: string) => `net=${network} id=${containerID}`.slice(0, 128);

const nfproto = (f: Family) => (f === 4 ? 'ipv4' : 'ipv6');
const ipKw = (f: Family) => (f === 4 ? 'ip' : 'ip6');
const markHex = (bit: number) => `0x${(2 ** bit).toString(16)}`;

/** A map element: which map, its key, and the text of the key. */
export interface Element {
  map: 'ports' | 'hostip4' | 'hostip6';
  key: string;
}

/** The map declarations, in the skeleton and in each ADD's re-declaration that adds elements. */
const MAP_TYPES: Record<Element['map'], string> = {
  ports: 'inet_proto . inet_service : verdict',
  hostip4: 'ipv4_addr . inet_proto . inet_service : verdict',
  hostip6: 'ipv6_addr . inet_proto . inet_service : verdict',
};
const mapDecl = (map: Element['map']) => `add map ${TABLE} ${map} { type ${MAP_TYPES[map]}; }`;

/** The map elements of a request for the container's families (a hostIP of the other family is skipped). */
export function elements(r: HostportRequest, families: readonly Family[]): Element[] {
  const out: Element[] = [];
  const seen = new Set<string>();
  const push = (e: Element) => {
    const id = `${e.map} ${e.key}`;
    if (!seen.has(id)) out.push(e), seen.add(id);
  };
  for (const m of r.mappings) {
    for (const f of families) {
      const { applies, dst } = mappingDestination(m, f);
      if (!applies) continue;
      push(dst ? { map: f === 4 ? 'hostip4' : 'hostip6', key: `${dst} . ${m.protocol} . ${m.hostPort}` } : { map: 'ports', key: `${m.protocol} . ${m.hostPort}` });
    }
  }
  return out;
}

/** Conditions are nft match expressions; joined in front of every rule of their family. */
const conditions = (r: HostportRequest, f: Family) => ((f === 4 ? r.conditionsV4 : r.conditionsV6) ?? []).join(' ');

export interface NftRule {
  text: string;
  /** The rule's comment, which CHECK looks for. */
  comment: string;
}

/** The container chain's rules, in order: per mapping and family the hairpin mark, the localhost mark, the dnat. */
export function containerRules(r: HostportRequest, cidrs: ReadonlyArray<readonly [Family, Cidr]>): NftRule[] {
  const out: NftRule[] = [];
  const setmark = `jump setmark-${r.markMasqBit}`;
  for (const m of r.mappings) {
    for (const [f, cidr] of cidrs) {
      const { applies, dst } = mappingDestination(m, f);
      if (!applies) continue;
      const name = `${m.protocol} ${dst ? `${dst} ` : ''}${m.hostPort} ${f === 4 ? 'IPv4' : 'IPv6'}`;
      const base = [`meta nfproto ${nfproto(f)}`, conditions(r, f), dst ? `${ipKw(f)} daddr ${dst}` : '', `meta l4proto ${m.protocol} th dport ${m.hostPort}`].filter(Boolean).join(' ');
      const rule = (what: string, tail: string) => ({ text: `${base} ${tail} comment "${what} ${name}"`, comment: `${what} ${name}` });
      if (r.snat) {
        const src = r.masqAll ? '' : `${ipKw(f)} saddr ${subnetText(cidr)} `;
        out.push(rule('hairpin', `${src}${setmark}`));
        if (f === 4 && !r.masqAll) out.push(rule('localhost', `ip saddr 127.0.0.1 ${setmark}`));
      }
      const to = f === 6 ? `[${formatIp(cidr.addr)}]:${m.containerPort}` : `${formatIp(cidr.addr)}:${m.containerPort}`;
      out.push(rule('dnat', `dnat ${ipKw(f)} to ${to}`));
    }
  }
  return out;
}

/**
 * The shared skeleton, re-asserted by every ADD: `add` of an existing table, map or chain is a no-op, and the
 * fixed chains are flushed and refilled in the same transaction, so a hand-damaged skeleton heals itself.
 */
export function skeleton(r: HostportRequest): string[] {
  const out = [
    ...scopeDecl,
    `add table ${TABLE}`,
    mapDecl('ports'),
    mapDecl('hostip4'),
    mapDecl('hostip6'),
    `add chain ${TABLE} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${TABLE} output { type nat hook output priority -100; policy accept; }`,
    `add chain ${TABLE} hostports`,
    `flush chain ${TABLE} prerouting`,
    `flush chain ${TABLE} output`,
    `flush chain ${TABLE} hostports`,
    `add rule ${TABLE} prerouting fib daddr type local jump hostports`,
    `add rule ${TABLE} output fib daddr type local jump hostports`,
    `add rule ${TABLE} hostports ip daddr . meta l4proto . th dport vmap @hostip4`,
    `add rule ${TABLE} hostports ip6 daddr . meta l4proto . th dport vmap @hostip6`,
    `add rule ${TABLE} hostports meta l4proto . th dport vmap @ports`,
  ];
  if (r.snat) {
    const mark = markHex(r.markMasqBit);
    const setmark = `setmark-${r.markMasqBit}`;
    out.push(`add chain ${TABLE} ${setmark}`, `flush chain ${TABLE} ${setmark}`, `add rule ${TABLE} ${setmark} meta mark set meta mark | ${mark}`);
    // With an external mark chain (kube-proxy's KUBE-MARK-MASQ bit, say) its owner masquerades marked packets.
    if (!r.externalSetMarkChain) {
      const masq = `masq-${r.markMasqBit}`;
      out.push(
        `add chain ${TABLE} ${masq} { type nat hook postrouting priority srcnat; policy accept; }`,
        `flush chain ${TABLE} ${masq}`,
        `add rule ${TABLE} ${masq} meta mark & ${mark} == ${mark} masquerade`,
      );
    }
  }
  return out;
}

/** The container's first address of each family it has. */
export const familyCidrs = (r: HostportRequest): Array<readonly [Family, Cidr]> =>
  ([4, 6] as const).flatMap((f) => {
    const c = containerCidr(r, f);
    return c ? [[f, c] as const] : [];
  });

/** The attachment's chain, the texts of its rules, and its map elements as `<key> comment ... : jump <chain>`. */
function containerParts(r: HostportRequest) {
  const chain = containerChain(r.network, r.containerID);
  const cidrs = familyCidrs(r);
  const owner = ownerComment(r.network, r.containerID);
  const rules = containerRules(r, cidrs).map((x) => x.text);
  const els = elements(r, cidrs.map(([f]) => f)).map((e) => ({ map: e.map, text: `${e.key} comment "${owner}" : jump ${chain}` }));
  return { chain, rules, els };
}

/**
 * ADD once the skeleton is there: the container chain with its rules in one block, then one map re-declaration
 * per element. Both forms make nft 1.0 fetch only the list of tables: `add rule` and `add element` make it dump
 * every chain and set of every table first (~50 ms per call with 20,000 iptables-nft chains on the host). The
 * chain is new, so nothing is updated in place and nft's exit need not wait for an RCU grace period (which a
 * flush or re-declaration of the chain in the same transaction would cost, ~14 ms). An element already
 * present with another container's verdict fails the transaction with "File exists" on its own line.
 */
export function containerScript(r: HostportRequest): string {
  const { chain, rules, els } = containerParts(r);
  return [
    `add chain ${TABLE} ${chain} { ${rules.map((x) => `${x} ;`).join(' ')} }`,
    ...els.map((e) => `add map ${TABLE} ${e.map} { type ${MAP_TYPES[e.map]}; elements = { ${e.text} } ; }`),
    '',
  ].join('\n');
}

/** The same for the full script, where the chain may exist already: it is flushed and refilled. */
function containerRefillScript(r: HostportRequest): string {
  const { chain, rules, els } = containerParts(r);
  return [
    `add chain ${TABLE} ${chain}`,
    `flush chain ${TABLE} ${chain}`,
    ...rules.map((x) => `add rule ${TABLE} ${chain} ${x}`),
    ...els.map((e) => `add element ${TABLE} ${e.map} { ${e.text} }`),
    '',
  ].join('\n');
}

/** The first ADD's script (and the fallback of every other): skeleton, then the container's part. */
export const addScript = (r: HostportRequest) => [...skeleton(r), containerRefillScript(r)].join('\n');

/**
 * DEL when the families are known or guessed. Re-adding each element with our own verdict before deleting it
 * makes the script idempotent (an element or chain already gone is re-created and removed again) and safe: an
 * element that jumps to another container's chain makes the add, and so the whole transaction, fail.
 */
export function delScript(r: HostportRequest, families: readonly Family[]): string {
  const chain = containerChain(r.network, r.containerID);
  return [
    `add chain ${TABLE} ${chain}`,
    ...elements(r, families).flatMap((e) => [`add element ${TABLE} ${e.map} { ${e.key} : jump ${chain} }`, `delete element ${TABLE} ${e.map} { ${e.key} }`]),
    `flush chain ${TABLE} ${chain}`,
    `delete chain ${TABLE} ${chain}`,
    '',
  ].join('\n');
}

/**
 * DEL with SCOPE_CHAIN as its scope: `delScript` after the table and the maps it touches, declared (as they are:
 * nothing changes when they exist). Fails as a whole when the scope table is missing, so a host whose skeleton
 * predates it takes `delScopedHere` instead. (Were our table removed by hand and the scope table left, this would
 * make the table again with empty maps, and no chain or hook.)
 */
export function delFastScript(r: HostportRequest, families: readonly Family[]): string {
  const maps = [...new Set(elements(r, families).map((e) => e.map))];
  return [`add table ${TABLE}`, ...maps.map(mapDecl), delScript(r, families)].join('\n');
}

/** `delScript` for a script scoped to our own `hostports` chain; it also makes the scope table for later DELs. */
export const delScopedHere = (r: HostportRequest, families: readonly Family[]) => [...scopeDecl, delScript(r, families)].join('\n');

/** DEL of listed elements and chains (slow path and GC). */
export function delListedScript(els: Element[], chains: string[]): string {
  return [...els.map((e) => `delete element ${TABLE} ${e.map} { ${e.key} }`), ...chains.flatMap((c) => [`flush chain ${TABLE} ${c}`, `delete chain ${TABLE} ${c}`]), ''].join('\n');
}

/** The element key as nft prints it in JSON ({"concat": [...]}) back to script text. */
function keyText(val: unknown): string | null {
  const parts = (val as { concat?: unknown[] })?.concat;
  return Array.isArray(parts) && parts.every((p) => typeof p === 'string' || typeof p === 'number') ? parts.join(' . ') : null;
}

/** From `nft -j list map ...` output: each element with its key, comment and jump target. */
export function parseMapListing(json: string, map: Element['map']): Array<Element & { comment?: string; target?: string }> {
  const out: Array<Element & { comment?: string; target?: string }> = [];
  let doc: { nftables?: Array<{ map?: { elem?: unknown[] } }> };
  try {
    doc = JSON.parse(json);
  } catch {
    return out;
  }
  for (const item of doc.nftables ?? []) {
    for (const pair of item.map?.elem ?? []) {
      if (!Array.isArray(pair) || pair.length !== 2) continue;
      const [k, v] = pair as [Record<string, any>, Record<string, any>];
      const inner = k.elem ?? { val: k };
      const key = keyText(inner.val);
      if (key === null) continue;
      out.push({ map, key, comment: inner.comment, target: v?.jump?.target });
    }
  }
  return out;
}

/** From `nft -j list chain ...`: the comments of its rules. */
export function ruleComments(json: string): Set<string> {
  const out = new Set<string>();
  try {
    for (const item of (JSON.parse(json) as { nftables?: Array<{ rule?: { comment?: string } }> }).nftables ?? []) {
      if (item.rule?.comment) out.add(item.rule.comment);
    }
  } catch {
    // not JSON: no rules
  }
  return out;
}

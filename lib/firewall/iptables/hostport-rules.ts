/**
 * Pure planning of the iptables host-port rules: the exact iptables-restore text for ADD, DEL and CHECK.
 * Chain names, rule shapes and comments are the Go portmap's (plugins/meta/portmap/portmap.go), so our rules
 * and the reference's can live on one host and either plugin can tear down what the other set up.
 *
 * nat table:
 *   PREROUTING, OUTPUT   -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
 *   CNI-HOSTPORT-DNAT    -m comment --comment "dnat name: ..." -m multiport -p tcp --destination-ports 8080,... -j CNI-DN-<hash>
 *   CNI-DN-<hash>        per mapping: mark hairpin, mark localhost (v4), DNAT
 *   CNI-HOSTPORT-SETMARK -j MARK --set-xmark <bit>;  POSTROUTING (first) -j CNI-HOSTPORT-MASQ: --mark <bit> -j MASQUERADE
 */
import { sha512Hex } from '../../hash';
import { formatIp, parseCidr, parseIp, subnetText, type Cidr, type Family } from '../../ip';
import type { HostportRequest, PortMapping } from '../driver';

export const TOP_DNAT_CHAIN = 'CNI-HOSTPORT-DNAT';
export const SETMARK_CHAIN = 'CNI-HOSTPORT-SETMARK';
export const MASQ_CHAIN = 'CNI-HOSTPORT-MASQ';

/** First 21 hex digits of sha512(network + containerID): the per-attachment part of both backends' names. */
export const attachmentHash = (network: string, containerID: string, length: number) =>
  sha512Hex(network + containerID).slice(0, length);

/** "CNI-DN-" + hash, 28 characters in all (the Go utils.MustFormatChainNameWithPrefix). */
export const dnatChainName = (network: string, containerID: string) => `CNI-DN-${attachmentHash(network, containerID, 21)}`;

/** The comment on the jump rules; iptables caps comments at 255 characters. */
export function dnatComment(network: string, containerID: string): string {
  const c = `dnat name: "${network}" id: "${containerID}"`;
  return c.length <= 255 ? c : `${c.slice(0, 253)}...`;
}

const markDef = (bit: number) => {
  const v = `0x${(2 ** bit).toString(16)}`;
  return `${v}/${v}`;
};

/** The container's first address of a family, from the request's addresses. */
export function containerCidr(r: HostportRequest, family: Family): Cidr | undefined {
  for (const a of r.addresses) {
    const c = parseCidr(a);
    if (c && c.addr.family === family) return c;
  }
  return undefined;
}

/** The families to touch: those of the container's addresses, or both when they are unknown (DEL without prevResult). */
export function familiesOf(r: HostportRequest): Family[] {
  const fams = ([4, 6] as const).filter((f) => containerCidr(r, f));
  return fams.length ? fams : [4, 6];
}

/** A mapping applies to a family unless its hostIP is of the other one; returns the destination to match, if any. */
export function mappingDestination(m: PortMapping, family: Family): { applies: boolean; dst?: string } {
  if (!m.hostIP) return { applies: true };
  const ip = parseIp(m.hostIP);
  if (!ip || ip.family !== family) return { applies: false };
  return ip.value === 0n ? { applies: true } : { applies: true, dst: formatIp(ip) };
}

/** One rule: chain plus its arguments (without -A/-D/-C). */
export interface Rule {
  chain: string;
  args: string[];
  /** What a CHECK failure calls it. */
  what: string;
}

/** The jump rules into the container's chain: multiport lists of up to 15 host ports per protocol, protocols sorted. */
export function entryRules(r: HostportRequest, family: Family): Rule[] {
  const chain = dnatChainName(r.network, r.containerID);
  const byProto = new Map<string, number[]>();
  for (const m of r.mappings) byProto.set(m.protocol, [...(byProto.get(m.protocol) ?? []), m.hostPort]);
  const conditions = (family === 4 ? r.conditionsV4 : r.conditionsV6) ?? [];
  const out: Rule[] = [];
  for (const proto of [...byProto.keys()].sort()) {
    const ports = byProto.get(proto)!;
    for (let i = 0; i < ports.length; i += 15) {
      const list = ports.slice(i, i + 15).join(',');
      out.push({
        chain: TOP_DNAT_CHAIN,
        args: ['-m', 'comment', '--comment', dnatComment(r.network, r.containerID), '-m', 'multiport', '-p', proto, '--destination-ports', list, ...conditions, '-j', chain],
        what: `jump to ${chain} for ${proto} ports ${list} in ${TOP_DNAT_CHAIN}`,
      });
    }
  }
  return out;
}

const ipPort = (ip: string, family: Family, port: number) => (family === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

/** The container chain's rules: per mapping the hairpin mark, the localhost mark (IPv4) and the DNAT, in that order. */
export function containerRules(r: HostportRequest, family: Family, cidr: Cidr): Rule[] {
  const chain = dnatChainName(r.network, r.containerID);
  const setMark = r.externalSetMarkChain ?? SETMARK_CHAIN;
  const out: Rule[] = [];
  for (const m of r.mappings) {
    const { applies, dst } = mappingDestination(m, family);
    if (!applies) continue;
    const base = ['-p', m.protocol, '--dport', String(m.hostPort), ...(dst ? ['-d', dst] : [])];
    const name = `${m.protocol} ${dst ? `${dst}:` : ''}${m.hostPort}`;
    if (r.snat) {
      const src = r.masqAll ? (family === 6 ? '::/0' : '0.0.0.0/0') : subnetText(cidr);
      out.push({ chain, args: [...base, '-s', src, '-j', setMark], what: `hairpin mark rule for ${name} in ${chain}` });
      if (family === 4 && !r.masqAll) out.push({ chain, args: [...base, '-s', '127.0.0.1', '-j', setMark], what: `localhost mark rule for ${name} in ${chain}` });
    }
    out.push({
      chain,
      args: [...base, '-j', 'DNAT', '--to-destination', ipPort(formatIp(cidr.addr), family, m.containerPort)],
      what: `DNAT rule for ${name} in ${chain}`,
    });
  }
  return out;
}

/** Rules shared by every container, created once per host; `prepend` ones go first in their chain. */
export function sharedRules(r: HostportRequest): Array<Rule & { prepend?: boolean }> {
  const out: Array<Rule & { prepend?: boolean }> = ['PREROUTING', 'OUTPUT'].map((chain) => ({
    chain,
    args: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', TOP_DNAT_CHAIN],
    what: `jump to ${TOP_DNAT_CHAIN} in ${chain}`,
  }));
  if (r.snat && !r.externalSetMarkChain) {
    const mark = markDef(r.markMasqBit);
    out.push(
      { chain: SETMARK_CHAIN, args: ['-m', 'comment', '--comment', 'CNI portfwd masquerade mark', '-j', 'MARK', '--set-xmark', mark], what: `mark rule in ${SETMARK_CHAIN}` },
      { chain: MASQ_CHAIN, args: ['-m', 'mark', '--mark', mark, '-j', 'MASQUERADE'], what: `masquerade rule in ${MASQ_CHAIN}` },
      { chain: 'POSTROUTING', args: ['-m', 'comment', '--comment', 'CNI portfwd requiring masquerade', '-j', MASQ_CHAIN], what: `jump to ${MASQ_CHAIN} in POSTROUTING`, prepend: true },
    );
  }
  return out;
}

/** The shared chains a request needs. */
export const sharedChains = (r: HostportRequest) => (r.snat && !r.externalSetMarkChain ? [TOP_DNAT_CHAIN, SETMARK_CHAIN, MASQ_CHAIN] : [TOP_DNAT_CHAIN]);

/** Quotes one argument for iptables-restore (it splits on blanks and honours "..." with \" inside). */
export function quoteArg(a: string): string {
  return a !== '' && /^[^\s"'\\]+$/.test(a) ? a : `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
const line = (op: string, rule: Rule) => [op, rule.chain, ...rule.args].map(quoteArg).join(' ');
const payload = (lines: string[]) => ['*nat', ...lines, 'COMMIT', ''].join('\n');

/**
 * ADD for one family: (re)create the container chain (a ":" line flushes an existing chain under --noflush), fill
 * it, and append the jumps. The shared chains must exist (the transaction fails otherwise, and the caller sets
 * them up); their rules are not checked here: any `-C` makes iptables-nft read every rule of the nat table
 * (~10 ms with 500 containers, one POSTROUTING rule each, and more on a busy node), so CHECK verifies them.
 */
export function addPayload(r: HostportRequest, family: Family, cidr: Cidr): string {
  const chain = dnatChainName(r.network, r.containerID);
  return payload([
    `:${chain} - [0:0]`,
    ...containerRules(r, family, cidr).map((c) => line('-A', c)),
    ...entryRules(r, family).map((e) => line('-A', e)),
  ]);
}

/** DEL for one family, assuming what ADD made is all there (the caller falls back to listing our chains). */
export function delPayload(r: HostportRequest, family: Family): string {
  const chain = dnatChainName(r.network, r.containerID);
  return payload([...entryRules(r, family).map((e) => line('-D', e)), `-F ${chain}`, `-X ${chain}`]);
}

/** DEL given the jump rules as `iptables -S` printed them ("-A CNI-HOSTPORT-DNAT ..."), then flush and delete `chains`. */
export function delListedPayload(listed: string[], chains: string[]): string {
  return payload([...listed.map((l) => `-D${l.slice(2)}`), ...chains.flatMap((c) => [`-F ${c}`, `-X ${c}`])]);
}

/** CHECK for one family: every rule as a -C line; `rules[i]` is payload line i + 2 (after "*nat"). */
export function checkPlan(r: HostportRequest, family: Family, cidr: Cidr): { text: string; rules: Rule[] } {
  const rules = [...sharedRules(r), ...containerRules(r, family, cidr), ...entryRules(r, family)];
  return { text: payload(rules.map((x) => line('-C', x))), rules };
}

/** Setup of missing shared rules (after -C told which are missing). */
export function sharedSetupPayload(missing: Array<Rule & { prepend?: boolean }>): string {
  return payload(missing.map((m) => (m.prepend ? [`-I`, m.chain, '1', ...m.args].map(quoteArg).join(' ') : line('-A', m))));
}

/** Lines of `iptables -S CNI-HOSTPORT-DNAT` that jump to `chain`. */
export const jumpsTo = (listing: string, chain: string) =>
  listing.split('\n').filter((l) => l.startsWith(`-A ${TOP_DNAT_CHAIN} `) && l.trimEnd().endsWith(`-j ${chain}`));

/** From `iptables -S CNI-HOSTPORT-DNAT`: the jump rules with the network and container ID of their comment. */
export function parseJumps(listing: string): Array<{ line: string; network: string; containerID: string; chain: string }> {
  const out = [];
  for (const l of listing.split('\n')) {
    const m = /--comment "dnat name: \\"([^"\\]*)\\" id: \\"([^"\\]*)\\"".* -j (CNI-DN-[0-9a-f]+)\s*$/.exec(l);
    if (l.startsWith(`-A ${TOP_DNAT_CHAIN} `) && m) out.push({ line: l.trimEnd(), network: m[1]!, containerID: m[2]!, chain: m[3]! });
  }
  return out;
}

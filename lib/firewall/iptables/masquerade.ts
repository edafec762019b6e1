/**
 * iptables masquerade for bridge ipMasq, in the Go plugin's shape so existing tooling (and the Go plugin's own
 * DEL) recognises it: a chain `CNI-<24 hex of sha512(network + containerID)>` in table nat holding
 * `-d <subnet> -j ACCEPT` and `! -d <multicast> -j MASQUERADE`, entered from POSTROUTING by `-s <ip> -j <chain>`,
 * every rule commented `name: "<network>" id: "<containerID>"`.
 *
 * Each change is one `iptables-restore --noflush` per family (ADD runs both from one shell). DEL removes what
 * ADD made by rule handle in one `nft -a -i` (by-handle.ts). Where that cannot be done (iptables-legacy, rules
 * made one at a time) it removes the POSTROUTING rules by their exact text, rebuilt from the addresses in
 * prevResult. With no addresses it checks that the chain exists; with no chain there is nothing to do (a rule
 * cannot jump to a missing chain). When there are no addresses, or a rule is already gone (the restore is atomic
 * and fails as a whole), it lists POSTROUTING alone and deletes the rules that jump to the attachment's chain. GC
 * lists POSTROUTING and reads network and container from the comments.
 */
import { sha512Hex } from '../../hash';
import { CniError, ErrorCode } from '../../errors';
import { iptablesRestore, run } from '../../exec';
import { parseCidr, subnetText, formatIp, type Family } from '../../ip';
import type { AttachmentKey, MasqueradeRequest } from '../driver';
import { deleteByHandle } from './by-handle';

export const chainName = (network: string, containerID: string) =>
  `CNI-${sha512Hex(network + containerID).slice(0, 24)}`;
export const ruleComment = (network: string, containerID: string) => `name: ${JSON.stringify(network)} id: ${JSON.stringify(containerID)}`;

const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };
const tool = (f: Family) => (f === 4 ? 'iptables' : 'ip6tables');
/** A word for iptables-restore's tokenizer. */
const word = (s: string) => (/^[\w./:-]+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);

interface FamilyRules {
  chain: string;
  comment: string;
  /** Container addresses (no prefix). */
  ips: string[];
  subnets: string[];
}

function byFamily(r: MasqueradeRequest): Map<Family, FamilyRules> {
  const out = new Map<Family, FamilyRules>();
  for (const a of r.addresses) {
    const c = parseCidr(a);
    if (!c) throw new CniError(ErrorCode.InvalidConfig, `masquerade: "${a}" is not an address with prefix length`);
    const f = c.addr.family;
    let fr = out.get(f);
    if (!fr) out.set(f, (fr = { chain: chainName(r.network, r.containerID), comment: ruleComment(r.network, r.containerID), ips: [], subnets: [] }));
    const ip = formatIp(c.addr);
    const subnet = subnetText(c);
    if (!fr.ips.includes(ip)) fr.ips.push(ip);
    if (!fr.subnets.includes(subnet)) fr.subnets.push(subnet);
  }
  return out;
}

const jumpRule = (ip: string, fr: Pick<FamilyRules, 'chain' | 'comment'>) => `POSTROUTING -s ${ip} -j ${fr.chain} -m comment --comment ${word(fr.comment)}`;

/** The restore payload that (re)creates the chain and hooks each address into it. */
export function addPayload(f: Family, fr: FamilyRules): string {
  const c = `-m comment --comment ${word(fr.comment)}`;
  return [
    '*nat',
    // With --noflush, declaring the chain creates it, or empties it when a previous ADD left it.
    `:${fr.chain} - [0:0]`,
    ...fr.subnets.map((s) => `-A ${fr.chain} -d ${s} -j ACCEPT ${c}`),
    `-A ${fr.chain} ! -d ${MULTICAST[f]} -j MASQUERADE ${c}`,
    ...fr.ips.map((ip) => `-A ${jumpRule(ip, fr)}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** The payload that removes the given POSTROUTING rules (`-D` lines, verbatim) and the chain. */
export function delPayload(chain: string, postroutingDeletes: string[]): string {
  return ['*nat', ...postroutingDeletes, `:${chain} - [0:0]`, `-X ${chain}`, 'COMMIT', ''].join('\n');
}

/** `-A POSTROUTING ... -j <chain> ...` lines of an `iptables -S POSTROUTING` listing, as `-D` lines. */
export function jumpsTo(listing: string, chain: string): string[] {
  return listing
    .split('\n')
    .filter((l) => l.startsWith('-A POSTROUTING ') && new RegExp(`(^| )-j ${chain}( |$)`).test(l))
    .map((l) => `-D ${l.slice(3)}`);
}

async function listPostrouting(f: Family): Promise<string | null> {
  const r = await run(tool(f), ['-w', '5', '-t', 'nat', '-S', 'POSTROUTING'], { allowFailure: true });
  return r.code === 0 ? r.stdout : null;
}

async function chainExists(f: Family, chain: string): Promise<boolean> {
  return (await run(tool(f), ['-w', '5', '-t', 'nat', '-S', chain], { allowFailure: true })).code === 0;
}

export async function available(): Promise<boolean> {
  try {
    return (await listPostrouting(4)) !== null;
  } catch {
    return false;
  }
}

/**
 * Both families in one process from us (a shell running the two restores side by side): each process this
 * plugin starts costs its single thread a fork of a large process, far more than sh's fork of iptables-restore.
 */
export function dualRestoreScript(payloads: ReadonlyArray<readonly [Family, string]>): string {
  const restore = (f: Family) => `${f === 4 ? 'iptables-restore' : 'ip6tables-restore'} --noflush -w 10`;
  const [[f1, p1], [f2, p2]] = payloads as [[Family, string], [Family, string]];
  return [`${restore(f1)} <<'CNI_EOF_A' &`, p1.trimEnd(), 'CNI_EOF_A', `${restore(f2)} <<'CNI_EOF_B'`, p2.trimEnd(), 'CNI_EOF_B', 'b=$?; wait $! && [ $b -eq 0 ]', ''].join('\n');
}

export async function addMasquerade(r: MasqueradeRequest): Promise<void> {
  const payloads = [...byFamily(r)].map(([f, fr]) => [f, addPayload(f, fr)] as const);
  if (payloads.length === 2) await run('sh', ['-c', dualRestoreScript(payloads)]);
  else await Promise.all(payloads.map(([f, p]) => iptablesRestore(f, p)));
}

/**
 * The exact-text removal for each family with addresses; returns the families where it failed. One
 * iptables-restore per family, not one shell for both: it tells when its commit is in before it exits
 * (`iptablesRestore`), which a shell around it would hide.
 */
async function fastDelete(chain: string, comment: string, byFam: Array<[Family, string[]]>): Promise<Set<Family>> {
  const payload = (ips: string[]) => delPayload(chain, ips.map((ip) => `-D ${jumpRule(ip, { chain, comment })}`));
  const codes = await Promise.all(byFam.map(([f, ips]) => iptablesRestore(f, payload(ips), { allowFailure: true }).then((r) => r.code, () => 1)));
  return new Set(byFam.map(([f]) => f).filter((_, i) => codes[i] !== 0));
}

/** Resolves true when it found something of the attachment to remove. */
async function delFamily(f: Family, chain: string, hadIps: boolean): Promise<boolean> {
  if (!hadIps && !(await chainExists(f, chain))) {
    // Rules can only jump to a chain that exists: no chain, nothing of this attachment in POSTROUTING.
    return false;
  }
  // No addresses, or a rule was already gone: find what really jumps to the chain.
  const listing = await listPostrouting(f);
  if (listing === null) return false; // no such table or tool: nothing of ours can be there
  const deletes = jumpsTo(listing, chain);
  if (!deletes.length && !(await chainExists(f, chain))) return false;
  await iptablesRestore(f, delPayload(chain, deletes));
  return true;
}

export async function delMasquerade(r: MasqueradeRequest): Promise<boolean> {
  const fams = byFamily(r);
  const chain = chainName(r.network, r.containerID);
  const comment = ruleComment(r.network, r.containerID);
  const withIps = [...fams].map(([f, fr]) => [f, fr.ips] as [Family, string[]]);
  // What ADD made, removed by rule handle (by-handle.ts): at 500 containers iptables-restore's -D reads all 500
  // jumps of POSTROUTING. A family without the chain has nothing of the attachment; the rest go to iptables-restore.
  const byHandle = await deleteByHandle(withIps.map(([family, ips]) => ({ family, from: 'POSTROUTING', chain, jumps: ips.length })));
  const removed = withIps.filter((_, i) => byHandle[i] === 'removed').length;
  const viaRestore = withIps.filter((_, i) => byHandle[i] === 'fallback');
  const failed = viaRestore.length ? await fastDelete(chain, comment, viaRestore) : new Set<Family>();
  // With addresses, only the families whose exact rules were already gone are looked up by name; without any,
  // both families are.
  const rest: Family[] = fams.size ? [...failed] : [4, 6];
  const found = await Promise.all(rest.map((f) => delFamily(f, chain, fams.has(f))));
  return removed > 0 || viaRestore.length > failed.size || found.some(Boolean);
}

export async function checkMasquerade(r: MasqueradeRequest): Promise<void> {
  const checks: Array<[Family, string[], string]> = [];
  for (const [f, fr] of byFamily(r)) {
    const c = ['-m', 'comment', '--comment', fr.comment];
    for (const s of fr.subnets) checks.push([f, [fr.chain, '-d', s, '-j', 'ACCEPT', ...c], `${fr.chain} -d ${s} -j ACCEPT`]);
    checks.push([f, [fr.chain, '!', '-d', MULTICAST[f], '-j', 'MASQUERADE', ...c], `${fr.chain} ! -d ${MULTICAST[f]} -j MASQUERADE`]);
    for (const ip of fr.ips) checks.push([f, ['POSTROUTING', '-s', ip, '-j', fr.chain, ...c], `POSTROUTING -s ${ip} -j ${fr.chain}`]);
  }
  const results = await Promise.all(checks.map(([f, args]) => run(tool(f), ['-w', '5', '-t', 'nat', '-C', ...args], { allowFailure: true })));
  const missing = checks.filter((_, i) => results[i]!.code !== 0).map(([f, , text]) => `${tool(f)} -t nat ${text}`);
  if (missing.length) {
    throw new CniError(ErrorCode.Internal, `masquerade rules of container ${r.containerID} on network ${r.network} are missing: ${missing.join('; ')}`);
  }
}

/** Container IDs of `network` that have POSTROUTING jumps, from the rules' comments. */
export function attachmentsInListing(listing: string, network: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const prefix = `--comment "name: \\"${network}\\" id: \\"`;
  for (const line of listing.split('\n')) {
    if (!line.startsWith('-A POSTROUTING ')) continue;
    const at = line.indexOf(prefix);
    if (at < 0) continue;
    const rest = line.slice(at + prefix.length);
    const cid = rest.slice(0, rest.indexOf('\\"'));
    const jump = / -j (CNI-[0-9a-f]{24})( |$)/.exec(line)?.[1];
    if (!cid || jump !== chainName(network, cid)) continue;
    out.set(cid, [...(out.get(cid) ?? []), `-D ${line.slice(3)}`]);
  }
  return out;
}

export async function gcMasquerade(network: string, valid: AttachmentKey[]): Promise<void> {
  // iptables rules carry no ifname (as in the reference): a container is kept if any of its attachments is valid.
  const keep = new Set(valid.map((a) => a.containerID));
  await Promise.all(
    ([4, 6] as const).map(async (f) => {
      const listing = await listPostrouting(f);
      if (listing === null) return;
      const stale = [...attachmentsInListing(listing, network)].filter(([cid]) => !keep.has(cid));
      if (!stale.length) return;
      const payload = ['*nat', ...stale.flatMap(([, dels]) => dels), ...stale.flatMap(([cid]) => [`:${chainName(network, cid)} - [0:0]`, `-X ${chainName(network, cid)}`]), 'COMMIT', ''];
      await iptablesRestore(f, payload.join('\n'));
    }),
  );
}

/**
 * nftables masquerade for bridge ipMasq, in the Go plugin's layout so either implementation cleans up after the
 * other: table `inet cni_plugins_masquerade`, base chain `postrouting` (multicast returns, then `goto
 * masq_checks`), and in `masq_checks` one rule per container address
 * `ip saddr <ip> ip daddr != <subnet> masquerade` commented
 * `<sha512(network)[:16]>-<sha512(ifname:containerID)[:16]>, net: <network>, if: <ifname>, id: <containerID>`.
 *
 * ADD is one nft transaction that appends the rules (and a second to heal or create the shared part when the
 * first says it is missing or damaged). nft deletes rules by handle only, so DEL, CHECK and GC list `masq_checks`
 * by name (never the ruleset) and pick rules by their comment prefix.
 */
import { sha512Hex } from '../../hash';
import { CniError, ErrorCode } from '../../errors';
import { nftApply, nftListThenApply, prepareNftApply, run, type RunResult } from '../../exec';
import { formatIp, parseCidr, subnetText } from '../../ip';
import type { AttachmentKey, MasqueradeRequest, PreparedMasquerade } from '../driver';

export const TABLE = 'inet cni_plugins_masquerade';
export const CHAIN = 'masq_checks';
/** The base chain, a few rules long, which scripts name as their scope (see nftApply's scopeChain). */
const POSTROUTING = `${TABLE} postrouting`;
/** postrouting's rules, as `nft list` prints them back. */
const POSTROUTING_RULES = ['ip daddr 224.0.0.0/4 return', 'ip6 daddr ff00::/8 return', `goto ${CHAIN}`];
/** knftables' comment limit, which the Go plugin cuts its comments to. */
const COMMENT_MAX = 128;

const hash16 = (s: string) => sha512Hex(s).slice(0, 16);
export const networkHash = (network: string) => hash16(network);
export const instanceHash = (network: string, ifname: string, containerID: string) => `${networkHash(network)}-${hash16(`${ifname}:${containerID}`)}`;
export function ruleComment(network: string, ifname: string, containerID: string): string {
  const strip = (s: string) => s.replace(/"/g, '');
  return `${instanceHash(network, ifname, containerID)}, net: ${strip(network)}, if: ${strip(ifname)}, id: ${strip(containerID)}`.slice(0, COMMENT_MAX);
}

/** The rule text for each address, as `nft list` prints it back (for CHECK). */
function ruleBodies(addresses: string[]): string[] {
  return addresses.map((a) => {
    const c = parseCidr(a);
    if (!c) throw new CniError(ErrorCode.InvalidConfig, `masquerade: "${a}" is not an address with prefix length`);
    const ip = c.addr.family === 4 ? 'ip' : 'ip6';
    return `${ip} saddr ${formatIp(c.addr)} ${ip} daddr != ${subnetText(c)} masquerade`;
  });
}

const TABLE_COMMENT = 'Masquerading for plugins from github.com/containernetworking/plugins';
const CHAIN_COMMENT = 'Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet';

/**
 * The shared part, as the Go plugin re-asserts it on every ADD: the table and `masq_checks` with their comments,
 * `postrouting` flushed and refilled. Sent only when the table is missing or `postrouting` is not as it should
 * be: the re-declarations and the flush leave the kernel objects to free after an RCU grace period, which nft's
 * exit waits for (holding the namespace's nf_tables commit lock), so it is resolved at its commit.
 */
export function skeletonScript(): string {
  return [
    `add table ${TABLE} { comment "${TABLE_COMMENT}" ; }`,
    `add chain ${TABLE} ${CHAIN} { comment "${CHAIN_COMMENT}" ; }`,
    `add chain ${TABLE} postrouting { type nat hook postrouting priority srcnat ; }`,
    `flush chain ${TABLE} postrouting`,
    `add chain ${TABLE} postrouting { ${POSTROUTING_RULES.map((x) => `${x} ;`).join(' ')} }`,
    '',
  ].join('\n');
}

/**
 * The attachment's rules, appended to `masq_checks`: adding rules leaves nothing for the kernel to free, so nft
 * exits at once. Sent with postrouting as its scope (no dump of the host's chains), whose listing, printed
 * from nft's fetch before the commit, says whether the skeleton is intact. Fails as a whole without the table.
 */
export function rulesScript(r: MasqueradeRequest): string {
  const comment = JSON.stringify(ruleComment(r.network, r.ifname, r.containerID));
  return ruleBodies(r.addresses).map((b) => `add rule ${TABLE} ${CHAIN} ${b} comment ${comment}`).join('\n') + '\n';
}

/** Whether `nft list chain ... postrouting` output shows the base chain with its rules in order. */
export function postroutingIntact(listing: string): boolean {
  const lines = listing.split('\n').map((l) => l.trim());
  const at = lines.findIndex((l) => l.startsWith('type nat hook postrouting priority srcnat'));
  return at >= 0 && POSTROUTING_RULES.every((rule, i) => lines[at + 1 + i] === rule);
}

interface ListedRule {
  handle: number;
  comment: string;
  body: string;
}

/** Rules of `masq_checks` from `nft -a list chain` output; null when the chain is not there. */
export function parseChain(listing: string): ListedRule[] {
  const out: ListedRule[] = [];
  for (const line of listing.split('\n')) {
    const m = /^\s*(.*?) comment "([^"]*)" # handle (\d+)$/.exec(line);
    if (m) out.push({ body: m[1]!, comment: m[2]!, handle: Number(m[3]) });
  }
  return out;
}

async function listRules(): Promise<ListedRule[] | null> {
  const r = await run('nft', ['-a', 'list', 'chain', ...TABLE.split(' '), CHAIN], { allowFailure: true, stdoutToFile: true });
  return r.code === 0 ? parseChain(r.stdout) : null;
}

const deleteScript = (rules: ListedRule[]) => rules.map((x) => `delete rule ${TABLE} ${CHAIN} handle ${x.handle}`).join('\n') + '\n';

/** Deletes listed rules; scoped to postrouting, and unscoped in the rare table that lacks it (made by hand). */
async function deleteRules(rules: ListedRule[]): Promise<void> {
  const scoped = await nftApply(deleteScript(rules), { resolveAtCommit: true, scopeChain: POSTROUTING, allowFailure: true });
  if (scoped.code !== 0) await nftApply(deleteScript(rules), { resolveAtCommit: true });
}

export async function available(): Promise<boolean> {
  try {
    // A checked (never committed) transaction: proves nft and the kernel's nf_tables work, changes nothing.
    return (await run('nft', ['-c', '-f', '-'], { input: `add table ${TABLE}\n`, allowFailure: true })).code === 0;
  } catch {
    return false;
  }
}

/** After the rules' transaction: nothing more, or the skeleton when the table is missing or damaged. */
async function healIfNeeded(r: MasqueradeRequest, added: RunResult): Promise<void> {
  if (added.code === 0 && postroutingIntact(added.stdout)) return;
  // No table yet (the rules were not added), or a damaged postrouting (they were): the skeleton, healed.
  await nftApply(added.code === 0 ? skeletonScript() : skeletonScript() + rulesScript(r), { resolveAtCommit: true, scopeChain: POSTROUTING });
}

export async function addMasquerade(r: MasqueradeRequest): Promise<void> {
  if (!r.addresses.length) return;
  await healIfNeeded(r, await nftApply(rulesScript(r), { allowFailure: true, scopeChain: POSTROUTING }));
}

export function prepareMasquerade(): PreparedMasquerade {
  const nft = prepareNftApply({ allowFailure: true, scopeChain: POSTROUTING });
  return {
    async add(r) {
      if (!r.addresses.length) return nft.cancel();
      await healIfNeeded(r, await nft.apply(rulesScript(r)));
    },
    cancel: () => nft.cancel(),
  };
}

export async function delMasquerade(r: MasqueradeRequest): Promise<boolean> {
  const prefix = instanceHash(r.network, r.ifname, r.containerID);
  const oursIn = (rules: ListedRule[]) => rules.filter((x) => x.comment.startsWith(prefix));
  // The listing and the removal in one nft process, one process start less; as before, a removal that fails
  // scoped (a table without postrouting, made by hand) is retried unscoped.
  let ours: ListedRule[] = [];
  const session = await nftListThenApply(`list chain ${TABLE} ${CHAIN}`, (listing) => {
    ours = listing === null ? [] : oursIn(parseChain(listing));
    return ours.length ? deleteScript(ours) : undefined;
  }, { scopeChain: POSTROUTING, allowFailure: true });
  if (session) {
    if (session.applied && session.applied.code !== 0) await nftApply(deleteScript(ours), { resolveAtCommit: true });
    return ours.length > 0;
  }
  const rules = await listRules();
  if (!rules) return false;
  ours = oursIn(rules);
  if (ours.length) await deleteRules(ours);
  return ours.length > 0;
}

export async function checkMasquerade(r: MasqueradeRequest): Promise<void> {
  const rules = (await listRules()) ?? [];
  const prefix = instanceHash(r.network, r.ifname, r.containerID);
  const have = new Set(rules.filter((x) => x.comment.startsWith(prefix)).map((x) => x.body));
  const missing = ruleBodies(r.addresses).filter((b) => !have.has(b));
  if (missing.length) {
    throw new CniError(ErrorCode.Internal, `masquerade rules of container ${r.containerID} (${r.ifname}) on network ${r.network} are missing from nft ${TABLE} ${CHAIN}: ${missing.join('; ')}`);
  }
}

export async function gcMasquerade(network: string, valid: AttachmentKey[]): Promise<void> {
  const rules = await listRules();
  if (!rules) return;
  const keep = new Set(valid.map((a) => instanceHash(network, a.ifname, a.containerID)));
  const prefix = `${networkHash(network)}-`;
  const stale = rules.filter((x) => x.comment.startsWith(prefix) && !keep.has(x.comment.slice(0, prefix.length + 16)));
  if (stale.length) await deleteRules(stale);
}

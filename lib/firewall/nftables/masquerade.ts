/**
 * nftables masquerade for bridge ipMasq, in the Go plugin's layout so either implementation cleans up after the
 * other: table `inet cni_plugins_masquerade`, base chain `postrouting` (multicast returns, then `goto
 * masq_checks`), and in `masq_checks` one rule per container address
 * `ip saddr <ip> ip daddr != <subnet> masquerade` commented
 * `<sha512(network)[:16]>-<sha512(ifname:containerID)[:16]>, net: <network>, if: <ifname>, id: <containerID>`.
 *
 * nft deletes rules by handle only. ADD appends the rules in one transaction and, in the same `nft -i` process,
 * records their handles (which nft echoes) in an empty chain of ours in the table, `r-<instance>`; DEL looks the
 * record up by name and removes the rules by handle. Without a record (an attachment of the Go plugin's, or one
 * whose rules someone else removed), DEL, like CHECK and GC, lists `masq_checks` by name (never the ruleset) and
 * picks rules by their comment prefix. A second transaction heals or creates the shared part when
 * the first says it is missing or damaged.
 */
import { sha512Hex } from '../../hash';
import { CniError, ErrorCode } from '../../errors';
import { failure, nftApply, nftSession, run, traceNote, type NftSession, type RunResult } from '../../exec';
import { formatIp, parseCidr, parseIp, subnetText } from '../../ip';
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
 * The record of where an attachment's rules are: an empty chain of ours in the table, `r-<instance hash as 32 hex
 * digits>`, whose comment holds the first rule's handle and the number of rules (one transaction's rules have
 * consecutive handles, and a record is made only when they do). It spares DEL the listing of `masq_checks`, one
 * rule per container. A chain because nft 1.0 looks a chain up by name (~400 bytes fetched at any size) but a map
 * element only with the whole map, and fetches every element of a table's maps for each script scoped to a chain
 * of the table: our records were a map, `masq_handles`, until that cost each ADD and DEL +7 ms at 500 containers.
 * A record can only ever point at the rules it was made for: nft never reuses a handle within a table's life,
 * and the chain goes with its table; so DEL believes a record as far as the removal by handle succeeds, and lists
 * `masq_checks` when it does not (someone removed a rule: the Go plugin's DEL, a person). The Go plugin leaves
 * other chains of the table alone; our GC removes records of gone attachments, and DEL and GC still honour
 * records an older version left in the map.
 */
const RECORD_PREFIX = 'r-';
/** An instance hash as 32 hex digits. */
const hexOf = (instance: string) => instance.replace('-', '');
export const recordChain = (network: string, ifname: string, containerID: string) => `${RECORD_PREFIX}${hexOf(instanceHash(network, ifname, containerID))}`;
const recordComment = (first: bigint, count: number) => `first=${first} count=${count}`;

export interface RuleRecord {
  /** The instance hash as 32 hex digits. */
  instance: string;
  first: bigint;
  count: number;
}

/** The record chains in a listing (`list chain` of one, or `list table`). */
export function parseRecordChains(listing: string): RuleRecord[] {
  const out: RuleRecord[] = [];
  const re = new RegExp(`chain ${RECORD_PREFIX}([0-9a-f]{32}) \\{[^\\n]*\\n\\s*comment "first=(\\d+) count=(\\d+)"`, 'g');
  for (const m of listing.matchAll(re)) out.push({ instance: m[1]!, first: BigInt(m[2]!), count: Number(m[3]) });
  return out;
}

/** `create` fails on an existing record; `add` (after its delete, in one transaction) replaces one. */
const recordScript = (chain: string, first: bigint, count: number, verb: 'create' | 'add' = 'create') => `${verb} chain ${TABLE} ${chain} { comment "${recordComment(first, count)}" ; }\n`;
const unrecordScript = (chains: string[]) => chains.map((c) => `delete chain ${TABLE} ${c}\n`).join('');

/** An older version's records: a map, keyed by the instance (as an IPv6 address), the value first handle and count. */
export const HANDLES = 'masq_handles';
const asIp6 = (hex: string) => formatIp({ family: 6, value: BigInt(`0x${hex}`) });
export const recordKey = (network: string, ifname: string, containerID: string) => asIp6(hexOf(instanceHash(network, ifname, containerID)));
export const recordValue = (first: bigint, count: number) => asIp6(first.toString(16).padStart(16, '0') + count.toString(16).padStart(16, '0'));
const MASK64 = (1n << 64n) - 1n;
const unrecordMapScript = (keys: string[]) => `delete element ${TABLE} ${HANDLES} { ${keys.join(', ')} }\n`;

/** The elements of a `list map` or `get element` listing of masq_handles. */
export function parseRecords(listing: string): RuleRecord[] {
  const body = /elements = \{([^}]*)\}/.exec(listing)?.[1] ?? '';
  const out: RuleRecord[] = [];
  for (const m of body.matchAll(/([0-9a-f:]+) : ([0-9a-f:]+)/g)) {
    const key = parseIp(m[1]!);
    const value = parseIp(m[2]!);
    if (key?.family !== 6 || value?.family !== 6) continue;
    out.push({ instance: key.value.toString(16).padStart(32, '0'), first: value.value >> 64n, count: Number(value.value & MASK64) });
  }
  return out;
}

/** The handles nft echoed (-e -a) for rules added to masq_checks, in order. */
export function echoedHandles(echo: string): bigint[] {
  const prefix = `add rule ${TABLE} ${CHAIN} `;
  return echo.split('\n').filter((l) => l.startsWith(prefix)).map((l) => /# handle (\d+)$/.exec(l)).filter((m) => !!m).map((m) => BigInt(m![1]!));
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
  const lines = listing.split('\n').map((l) => l.replace(/ # handle \d+$/, '').trim());
  const at = lines.findIndex((l) => l.startsWith('type nat hook postrouting priority srcnat'));
  return at >= 0 && POSTROUTING_RULES.every((rule, i) => lines[at + 1 + i] === rule);
}

interface ListedRule {
  handle: number | bigint;
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

const deleteScript = (rules: Array<Pick<ListedRule, 'handle'>>) => rules.map((x) => `delete rule ${TABLE} ${CHAIN} handle ${x.handle}`).join('\n') + '\n';

/** A removal; scoped to postrouting, and unscoped in the rare table that lacks it (made by hand). */
async function remove(script: string): Promise<void> {
  const scoped = await nftApply(script, { resolveAtCommit: true, scopeChain: POSTROUTING, allowFailure: true });
  if (scoped.code !== 0) await nftApply(script, { resolveAtCommit: true });
}

export async function available(): Promise<boolean> {
  try {
    // A checked (never committed) transaction: proves nft and the kernel's nf_tables work, changes nothing.
    return (await run('nft', ['-c', '-f', '-'], { input: `add table ${TABLE}\n`, allowFailure: true })).code === 0;
  } catch {
    return false;
  }
}

/** After the rules' transaction: no table yet (the rules were not added), or a damaged postrouting (they were). */
const healScript = (r: MasqueradeRequest, added: RunResult) => (added.code === 0 ? skeletonScript() : skeletonScript() + rulesScript(r));
const healed = (added: RunResult) => added.code === 0 && postroutingIntact(added.stdout);

/** After the rules' transaction in `nft -f` (no interactive nft): nothing more, or the skeleton, healed. */
async function healIfNeeded(r: MasqueradeRequest, added: RunResult): Promise<void> {
  if (!healed(added)) await nftApply(healScript(r, added), { resolveAtCommit: true, scopeChain: POSTROUTING });
}

/** Records where the rules nft echoed are; a record that cannot be made is left out (DEL then lists). */
async function record(nft: NftSession, r: MasqueradeRequest, echo: string): Promise<void> {
  const handles = echoedHandles(echo);
  if (handles.length !== r.addresses.length || handles.some((h, i) => h !== handles[0]! + BigInt(i))) return;
  const chain = recordChain(r.network, r.ifname, r.containerID);
  const [first, count] = [handles[0]!, handles.length];
  const made = await nft.send(recordScript(chain, first, count), { scopeChain: POSTROUTING });
  // A record left by an ADD whose rules the Go plugin's DEL removed: replaced, in one transaction.
  if (made?.code === 1 && /File exists/.test(made.stderr)) await nft.send(unrecordScript([chain]) + recordScript(chain, first, count, 'add'), { scopeChain: POSTROUTING });
}

/** The rules (and their record) in one `nft -e -a -i` process; falls back to `nft -f` without one. */
async function addIn(nft: NftSession, r: MasqueradeRequest): Promise<void> {
  const complete = (n: number) => (out: string) => echoedHandles(out).length >= n;
  try {
    const added = await nft.send(rulesScript(r), { scopeChain: POSTROUTING, complete: complete(r.addresses.length) });
    if (!added) return await healIfNeeded(r, await nftApply(rulesScript(r), { allowFailure: true, scopeChain: POSTROUTING }));
    if (healed(added)) return await record(nft, r, added.stdout);
    const script = healScript(r, added);
    const fixed = await nft.send(script, { scopeChain: POSTROUTING, complete: complete(added.code === 0 ? 0 : r.addresses.length) });
    if (!fixed) return void (await nftApply(script, { resolveAtCommit: true, scopeChain: POSTROUTING }));
    if (fixed.code !== 0) throw failure('nft -e -a -i', fixed);
    await record(nft, r, added.code === 0 ? added.stdout : fixed.stdout);
  } finally {
    nft.close();
  }
}

export async function addMasquerade(r: MasqueradeRequest): Promise<void> {
  if (r.addresses.length) await addIn(nftSession({ echo: true }), r);
}

export function prepareMasquerade(): PreparedMasquerade {
  const nft = nftSession({ echo: true });
  return {
    async add(r) {
      if (r.addresses.length) await addIn(nft, r);
      else nft.close();
    },
    cancel: async () => nft.close(),
  };
}

/** More addresses than any IPAM gives one interface. */
const MAX_RULES = 64;

/** The listing's complete once nft has printed the table's closing brace. */
const listed = (out: string) => out.endsWith('}\n');

export async function delMasquerade(r: MasqueradeRequest): Promise<boolean> {
  const prefix = instanceHash(r.network, r.ifname, r.containerID);
  const chain = recordChain(r.network, r.ifname, r.containerID);
  const key = recordKey(r.network, r.ifname, r.containerID);
  const oursIn = (rules: ListedRule[]) => rules.filter((x) => x.comment.startsWith(prefix));
  const nft = nftSession();
  try {
    // nft 1.0.6 does not retry all a concurrent commit interrupts: against a loop of commits a lookup failed with
    // EINTR 4 times in 300 and a listing of a chain that was there with "No such file or directory" once. A record
    // taken for absent, or a removal taken for impossible, would leave it or the rules behind; so each is tried
    // again, and a removal after a listing also removes the record chain whether or not it was seen.
    const tried = async (tries: number, script: string, o: Parameters<NftSession['send']>[1], transient: (r: RunResult) => boolean) => {
      let r = await nft.send(script, o);
      for (let i = 1; i < tries && r && r.code !== 0 && transient(r); i++) r = await nft.send(script, o);
      return r;
    };
    const eintr = (x: RunResult) => /Interrupted system call/.test(x.stderr);
    // The record: its chain, looked up by name; else an older version's element in the map.
    const looked = await tried(8, `list chain ${TABLE} ${chain}`, { complete: listed }, eintr);
    const asChain = looked?.code === 0 ? parseRecordChains(looked.stdout)[0] : undefined;
    const old = looked && !asChain ? await tried(8, `get element ${TABLE} ${HANDLES} { ${key} }`, { complete: listed }, eintr) : undefined;
    const inMap = old?.code === 0 ? parseRecords(old.stdout).find((x) => x.instance === hexOf(prefix)) : undefined;
    if (looked && (asChain || old)) {
      const found = asChain ?? inMap;
      // A record is ours to write; one of more rules than an attachment can have is not believed.
      const rec = found && found.count > 0 && found.count <= MAX_RULES ? found : undefined;
      if (rec) {
        const handles = Array.from({ length: rec.count }, (_, i) => ({ handle: rec.first + BigInt(i) }));
        const unrecord = asChain ? unrecordScript([chain]) : unrecordMapScript([key]);
        const byHandle = await tried(2, deleteScript(handles) + unrecord, { scopeChain: POSTROUTING }, () => true);
        if (byHandle?.code === 0) {
          traceNote('masquerade rules removed by their recorded handles');
          return true;
        }
      }
      // No record, or one whose rules are no longer all there: the chain's listing, in the same process (where
      // the record says the table is there, a failed listing is a false one).
      const listing = await tried(found ? 3 : 1, `list chain ${TABLE} ${CHAIN}`, { complete: listed }, () => true);
      if (listing) {
        const ours = listing.code === 0 ? oursIn(parseChain(listing.stdout)) : [];
        const script =
          (ours.length ? deleteScript(ours) : '') +
          // The table is there: the record chain goes, seen or not (added first, so the delete cannot fail).
          (listing.code === 0 ? `add chain ${TABLE} ${chain}\n${unrecordScript([chain])}` : '') +
          (inMap ? unrecordMapScript([key]) : '');
        if (!script) return false;
        // As before, a removal that fails scoped (a table without postrouting, made by hand) is retried unscoped.
        const applied = await nft.send(script, { scopeChain: POSTROUTING });
        if (applied?.code !== 0) await nftApply(script, { resolveAtCommit: true });
        return ours.length > 0;
      }
    }
  } finally {
    nft.close();
  }
  // An nft without interactive mode: a listing, then a removal.
  const rules = await listRules();
  if (!rules) return false;
  const ours = oursIn(rules);
  if (ours.length) await remove(deleteScript(ours));
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
  // One listing of the table: masq_checks' rules, our record chains and an older version's map.
  const table = await run('nft', ['-a', 'list', 'table', ...TABLE.split(' ')], { allowFailure: true, stdoutToFile: true });
  if (table.code !== 0) return;
  const keep = new Set(valid.map((a) => instanceHash(network, a.ifname, a.containerID)));
  const prefix = `${networkHash(network)}-`;
  const stale = parseChain(table.stdout).filter((x) => x.comment.startsWith(prefix) && !keep.has(x.comment.slice(0, prefix.length + 16)));
  if (stale.length) await remove(deleteScript(stale));
  // Records of gone attachments (one whose rules another implementation's DEL removed, say), and those an older
  // version left in the map.
  const keepKeys = new Set([...keep].map(hexOf));
  const gone = (records: RuleRecord[]) => records.filter((x) => x.instance.startsWith(networkHash(network)) && !keepKeys.has(x.instance));
  const chains = gone(parseRecordChains(table.stdout));
  if (chains.length) await remove(unrecordScript(chains.map((x) => `${RECORD_PREFIX}${x.instance}`)));
  const at = table.stdout.indexOf(`map ${HANDLES} {`);
  const elements = at < 0 ? [] : gone(parseRecords(table.stdout.slice(at, table.stdout.indexOf('\n\t}', at))));
  if (elements.length) await remove(unrecordMapScript(elements.map((x) => asIp6(x.instance))));
}

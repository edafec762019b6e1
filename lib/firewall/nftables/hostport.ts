/**
 * nftables host ports for portmap: one `nft -f -` transaction per ADD and per DEL, touching only map
 * elements by key and the attachment's own chain. Slow paths (DEL of something already gone, CHECK, GC) list
 * only our own table's maps or the attachment's chain.
 */
import { CniError, ErrorCode, internalError } from '../../errors';
import { ExecError, nftApply, run } from '../../exec';
import type { AttachmentKey, HostportRequest } from '../driver';
import { familiesOf } from '../iptables/hostport-rules';
import {
  addScript,
  containerChain,
  containerScript,
  containerRules,
  delListedScript,
  delFastScript,
  delScopedHere,
  elements,
  familyCidrs,
  ownerComment,
  parseMapListing,
  ruleComments,
  SCOPE_CHAIN,
  TABLE,
  type Element,
} from './hostport-rules';

const MAPS: ReadonlyArray<Element['map']> = ['ports', 'hostip4', 'hostip6'];
const nft = (args: string[]) => run('nft', args, { allowFailure: true });
/** The skeleton's small chain, which every script may name as its scope (see nftApply's scopeChain). */
const HOSTPORTS = `${TABLE} hostports`;

export async function addHostports(r: HostportRequest): Promise<void> {
  try {
    // The container's part alone first; it fails as a whole without the skeleton, which the full script adds.
    // (Repeated without a DEL, which the spec rules out, it appends a second copy of the container's rules
    // to its chain; DEL removes the chain with both.)
    const fast = await nftApply(containerScript(r), { allowFailure: true, tablesOnly: true });
    if (fast.code !== 0 && !/File exists/.test(fast.stderr)) await nftApply(addScript(r), { scopeChain: HOSTPORTS });
    else if (fast.code !== 0) throw new ExecError(ErrorCode.Internal, `nft -f - failed: ${fast.stderr.trim()}`, fast.stderr, fast);
  } catch (e) {
    const stderr = e instanceof ExecError ? (e.result?.stderr ?? '') : '';
    const line = stderr.split('\n').find((l) => l.startsWith('add element') || l.startsWith('add map')) ?? '';
    const clash = /^add (?:element|map) \S+ \S+ (\S+) \{ (?:type [^;]*; elements = \{ )?(.+?) comment/.exec(line);
    if (/File exists/.test(stderr) && clash) {
      const port = clash[2]!.split(' . ').join(' ');
      throw new CniError(ErrorCode.InvalidConfig, `runtimeConfig.portMappings: host port ${port} is already published by another container on this host (map ${clash[1]} of table ${TABLE})`);
    }
    throw e;
  }
}

/** Our table's elements that jump to `chain` (listing our three maps, not the ruleset). */
async function elementsJumpingTo(chain: string): Promise<Element[]> {
  const lists = await Promise.all(MAPS.map((m) => nft(['-j', 'list', 'map', ...TABLE.split(' '), m]).then((x) => parseMapListing(x.stdout, m))));
  return lists.flat().filter((e) => e.target === chain).map(({ map, key }) => ({ map, key }));
}

const chainListing = (chain: string) => nft(['-j', 'list', 'chain', ...TABLE.split(' '), chain]);

export async function delHostports(r: HostportRequest): Promise<void> {
  const chain = containerChain(r.network, r.containerID);
  const families = familiesOf(r);
  const apply = (script: string, scopeChain: string) => nftApply(script, { allowFailure: true, resolveAtCommit: true, scopeChain }).then((x) => x.code === 0, () => false);
  // Scoped to the empty scope table (nft fetches nothing of ours), else, where it is missing, to `hostports`.
  if ((await apply(delFastScript(r, families), SCOPE_CHAIN)) || (await apply(delScopedHere(r, families), HOSTPORTS))) return;
  // No table (or no hostports chain), or an element held by another container (a DEL whose mappings differ from
  // its ADD's): remove only what jumps to our chain.
  if ((await chainListing(chain)).code !== 0) return;
  const again = await nftApply(delListedScript(await elementsJumpingTo(chain), [chain]), { allowFailure: true, resolveAtCommit: true });
  if (again.code !== 0) throw internalError(`cannot remove port mappings chain ${chain} from table ${TABLE}: ${again.stderr.trim()}`);
}

export async function checkHostports(r: HostportRequest): Promise<void> {
  const chain = containerChain(r.network, r.containerID);
  const cidrs = familyCidrs(r);
  const listing = await chainListing(chain);
  if (listing.code !== 0) throw internalError(`nftables: missing chain ${chain} in table ${TABLE}`);
  const present = ruleComments(listing.stdout);
  for (const rule of containerRules(r, cidrs)) {
    if (!present.has(rule.comment)) throw internalError(`nftables: missing ${rule.comment} rule in chain ${chain} of table ${TABLE}`);
  }
  const wanted = elements(r, cidrs.map(([f]) => f));
  // `get element` prints the element with its verdict (it has no JSON output in nft 1.0).
  const found = await Promise.all(wanted.map((e) => nft(['get', 'element', ...TABLE.split(' '), e.map, `{ ${e.key} }`])));
  wanted.forEach((e, i) => {
    if (!found[i]!.stdout.includes(`jump ${chain}`)) throw internalError(`nftables: missing element { ${e.key} : jump ${chain} } in map ${e.map} of table ${TABLE}`);
  });
}

export async function gcHostports(network: string, valid: AttachmentKey[]): Promise<void> {
  const keep = new Set(valid.map((v) => ownerComment(network, v.containerID)));
  const prefix = ownerComment(network, '');
  const lists = await Promise.all(MAPS.map((m) => nft(['-j', 'list', 'map', ...TABLE.split(' '), m]).then((x) => parseMapListing(x.stdout, m))));
  const stale = lists.flat().filter((e) => e.comment?.startsWith(prefix) && !keep.has(e.comment));
  if (!stale.length) return;
  const chains = [...new Set(stale.map((e) => e.target).filter((t): t is string => !!t))];
  await nftApply(delListedScript(stale, chains), { resolveAtCommit: true });
}

/** Whether nft can be used here (for STATUS; spawns): a dry run of creating our table. */
export async function hostportsAvailable(): Promise<boolean> {
  const r = await run('nft', ['-c', '-f', '-'], { input: `add table ${TABLE}\n`, allowFailure: true }).catch(() => null);
  return !!r && r.code === 0;
}

/**
 * iptables host ports for portmap. ADD and CHECK are one `iptables-restore --noflush` per family on the common
 * path, and DEL one `nft -a -i` for both families (rules removed by handle, see by-handle.ts; iptables-restore
 * where iptables is legacy or the handles are not ADD's); none lists a table. Slow paths (first container on a
 * host, DEL of something already gone or made rule by rule, GC) list only our own chains by name.
 */
import { CniError, ErrorCode, internalError } from '../../errors';
import { ExecError, iptablesRestore, run } from '../../exec';
import type { Family } from '../../ip';
import { withLock } from '../../lock';
import { deleteByHandle } from './by-handle';
import type { AttachmentKey, HostportRequest } from '../driver';
import {
  addPayload,
  checkPlan,
  containerCidr,
  delListedPayload,
  delPayload,
  dnatChainName,
  entryRules,
  familiesOf,
  jumpsTo,
  parseJumps,
  sharedChains,
  sharedRules,
  sharedSetupPayload,
  TOP_DNAT_CHAIN,
} from './hostport-rules';

const iptables = (family: Family) => (family === 4 ? 'iptables' : 'ip6tables');
const nat = (family: Family, args: string[]) => run(iptables(family), ['-w', '10', '-t', 'nat', ...args], { allowFailure: true });

/** Serializes the slow path, so that concurrent first ADDs do not both append the shared rules. */
const SETUP_LOCK = '/run/cni-portmap-iptables.lock';

/** Creates the shared chains and rules that are missing (once per host, or after someone removed them). */
function setupShared(r: HostportRequest, family: Family): Promise<void> {
  return withLock(SETUP_LOCK, async () => {
    // -N fails when the chain exists, which is the usual case here.
    await Promise.all(sharedChains(r).map((c) => nat(family, ['-N', c])));
    const rules = sharedRules(r);
    const present = await Promise.all(rules.map((s) => nat(family, ['-C', s.chain, ...s.args]).then((x) => x.code === 0)));
    const missing = rules.filter((_, i) => !present[i]);
    if (missing.length) await iptablesRestore(family, sharedSetupPayload(missing));
  });
}

export async function addHostports(r: HostportRequest): Promise<void> {
  const applied: Family[] = [];
  try {
    for (const family of [4, 6] as const) {
      const cidr = containerCidr(r, family);
      if (!cidr) continue;
      await addFamily(r, family, addPayload(r, family, cidr));
      applied.push(family);
    }
  } catch (e) {
    // Each family is one transaction; undo the family that went in before the other failed.
    for (const family of applied) await delFamily(r, family).catch(() => undefined);
    throw e;
  }
}

async function addFamily(r: HostportRequest, family: Family, text: string): Promise<void> {
  try {
    await iptablesRestore(family, text);
  } catch (e) {
    // Usually the shared chains are not there yet; set them up and try once more.
    await setupShared(r, family);
    await iptablesRestore(family, text).catch((again: unknown) => {
      throw again instanceof CniError ? again : e;
    });
  }
}

/** Whether our chain exists, by listing only it. */
const chainExists = async (family: Family, chain: string) => (await nat(family, ['-S', chain])).code === 0;

/** Removes one family's rules; a failure is returned as text. */
async function delFamily(r: HostportRequest, family: Family): Promise<string | undefined> {
  const chain = dnatChainName(r.network, r.containerID);
  const done = await iptablesRestore(family, delPayload(r, family), { allowFailure: true }).then((x) => x.code === 0, () => false);
  if (done) return undefined;
  // Already gone (a second DEL), mappings differing from ADD's, or no such family: list our chains only.
  if (!(await chainExists(family, chain))) return undefined;
  const listing = await nat(family, ['-S', TOP_DNAT_CHAIN]);
  const again = await iptablesRestore(family, delListedPayload(jumpsTo(listing.stdout, chain), [chain]), { allowFailure: true });
  return again.code === 0 ? undefined : `${iptables(family)}-restore: ${again.stderr.trim()}`;
}

export async function delHostports(r: HostportRequest): Promise<void> {
  const failures: string[] = [];
  const chain = dnatChainName(r.network, r.containerID);
  const families = familiesOf(r);
  // What ADD made, removed by rule handle (by-handle.ts): at 500 containers, iptables-restore's -D reads all 500
  // jumps of CNI-HOSTPORT-DNAT. Whatever that cannot do goes to iptables-restore.
  const jumps = (family: Family) => entryRules(r, family).length;
  const byHandle = await deleteByHandle(families.map((family) => ({ family, from: TOP_DNAT_CHAIN, chain, jumps: jumps(family) })));
  for (const [i, family] of families.entries()) {
    if (byHandle[i] !== 'fallback') continue;
    const failed = await delFamily(r, family);
    if (failed) failures.push(failed);
  }
  if (failures.length) throw internalError(`cannot remove port mappings chain ${dnatChainName(r.network, r.containerID)}: ${failures.join('; ')}`);
}

export async function checkHostports(r: HostportRequest): Promise<void> {
  for (const family of [4, 6] as const) {
    const cidr = containerCidr(r, family);
    if (!cidr) continue;
    const { text, rules } = checkPlan(r, family, cidr);
    try {
      await iptablesRestore(family, text);
    } catch (e) {
      const stderr = e instanceof ExecError ? (e.result?.stderr ?? '') : String(e);
      const m = /line (\d+) failed/.exec(stderr);
      const rule = m ? rules[Number(m[1]) - 2] : undefined;
      if (!rule) throw e;
      throw new CniError(ErrorCode.Internal, `${iptables(family)}: missing ${rule.what}: ${rule.args.join(' ')}`);
    }
  }
}

export async function gcHostports(network: string, valid: AttachmentKey[]): Promise<void> {
  const keep = new Set(valid.map((v) => v.containerID));
  for (const family of [4, 6] as const) {
    const listing = await nat(family, ['-S', TOP_DNAT_CHAIN]);
    if (listing.code !== 0) continue;
    const stale = parseJumps(listing.stdout).filter((j) => j.network === network && !keep.has(j.containerID));
    if (!stale.length) continue;
    const chains = [...new Set(stale.map((s) => s.chain))];
    await iptablesRestore(family, delListedPayload(stale.map((s) => s.line), chains));
  }
}

/** Whether iptables can be used here (for STATUS; spawns). */
export async function hostportsAvailable(): Promise<boolean> {
  const r = await nat(4, ['-S', 'OUTPUT', '1']).catch(() => null);
  return !!r && r.code === 0;
}

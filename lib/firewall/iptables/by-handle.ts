/**
 * DEL of an attachment's iptables rules without iptables-nft reading the shared chain they hang from.
 *
 * To delete a rule, `iptables -D` (and iptables-restore's `-D`) fetches every rule of its chain and parses each
 * (~14 µs a rule here): at 500 containers, with 500 jumps in POSTROUTING and in CNI-HOSTPORT-DNAT, bridge's and
 * portmap's DEL restores went from 4-5 to 10-11 ms. nft deletes a rule by its handle and fetches nothing for it.
 * The handles come from the attachment's own chain, listed by name (a few rules): ADD writes that chain, its
 * rules and then its jumps in one iptables-restore transaction, and the kernel numbers a table's objects in the
 * order a transaction adds them, so the k jumps are the chain's last rule + 1 .. + k.
 *
 * The same transaction deletes the chain, which the kernel refuses while any rule still jumps to it, and a rule
 * handle that is not in the named chain is refused too: when the guess is wrong (rules added one process at a
 * time, as the Go plugins do, with someone else's in between), the transaction fails as a whole and the caller
 * falls back to iptables-restore. The chain goes by its handle, so nft keeps it in its cache and the listing
 * of it that ends the transaction narrows what nft fetches to that chain (a busy node's 20,000 kube-proxy
 * chains cost ~40 ms to fetch; see nftApply's scopeChain).
 *
 * Only where iptables is iptables-nft and nft is installed: iptables-legacy's rules are not nf_tables objects,
 * and nft would find none.
 */
import { realpathSync } from 'node:fs';
import { findOnPath } from '../../executable';
import { nftSession, type NftSession } from '../../exec';
import type { Family } from '../../ip';

/** The nf_tables table iptables-nft keeps a family's nat rules in. */
export const natTable = (family: Family) => (family === 4 ? 'ip nat' : 'ip6 nat');

/**
 * The transaction that deletes `jumps` rules of `from` and the chain, planned from `nft -a list chain` of the
 * chain; undefined when the listing is not the chain's or it has no rules (no handle to count from).
 */
export function planByHandle(listing: string, family: Family, from: string, chain: string, jumps: number): string | undefined {
  const lines = listing.split('\n');
  const head = lines.findIndex((l) => l.trim().startsWith(`chain ${chain} {`));
  const chainHandle = head >= 0 ? /# handle (\d+)$/.exec(lines[head]!.trimEnd())?.[1] : undefined;
  if (!chainHandle || jumps < 1) return undefined;
  const rules: number[] = [];
  for (const l of lines.slice(head + 1)) {
    if (l.trim() === '}') break;
    const h = /# handle (\d+)$/.exec(l.trimEnd())?.[1];
    if (h) rules.push(Number(h));
  }
  if (!rules.length) return undefined;
  const last = Math.max(...rules);
  const t = natTable(family);
  return [
    ...Array.from({ length: jumps }, (_, i) => `delete rule ${t} ${from} handle ${last + 1 + i}`),
    `delete chain ${t} handle ${chainHandle}`,
    `list chain ${t} ${chain}`,
  ].join('\n');
}

let usable: boolean | undefined;
/**
 * Whether iptables-restore on PATH is iptables-nft (xtables-nft-multi), by where its link leads, and nft is
 * there to delete by handle: no process started to find out.
 */
export function byHandleUsable(): boolean {
  if (usable !== undefined) return usable;
  const restore = findOnPath('iptables-restore');
  try {
    usable = !!restore && /nft/.test(realpathSync(restore)) && findOnPath('nft') !== undefined;
  } catch {
    usable = false;
  }
  return usable;
}

/** What became of one family: removed, nothing there (no chain), or left for iptables-restore to do. */
export type ByHandle = 'removed' | 'absent' | 'fallback';

export interface JumpsAndChain {
  family: Family;
  /** The shared chain the jumps are in. */
  from: string;
  /** The attachment's chain. */
  chain: string;
  /** How many jumps ADD added to it, in that chain's transaction. */
  jumps: number;
}

/** Removes each target's jumps and chain, in one `nft -a -i` for all of them (see the top of this file). */
export async function deleteByHandle(targets: JumpsAndChain[]): Promise<ByHandle[]> {
  if (!targets.length || !byHandleUsable()) return targets.map(() => 'fallback');
  let nft: NftSession | undefined;
  try {
    nft = nftSession();
    const out: ByHandle[] = [];
    for (const t of targets) out.push(await one(nft, t));
    return out;
  } catch {
    return targets.map(() => 'fallback');
  } finally {
    nft?.close();
  }
}

async function one(nft: NftSession, t: JumpsAndChain): Promise<ByHandle> {
  const listed = await nft.send(`list chain ${natTable(t.family)} ${t.chain}`, { complete: (out) => out.endsWith('}\n') });
  if (!listed) return 'fallback';
  // No such chain (or no nat table): no rule can jump to it, so nothing of the attachment is in this family.
  if (listed.code !== 0) return /No such file or directory/.test(listed.stderr) ? 'absent' : 'fallback';
  const script = planByHandle(listed.stdout, t.family, t.from, t.chain, t.jumps);
  if (!script) return 'fallback';
  const applied = await nft.send(script);
  return applied?.code === 0 ? 'removed' : 'fallback';
}

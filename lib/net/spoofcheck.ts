/**
 * macspoofchk: frames entering the bridge from a container's host veth must carry the container's MAC.
 * The layout is the Go plugin's (table `bridge nat`, base chain PREROUTING, chains `cni-br-iface-<id>` and
 * `cni-br-iface-<id>-mac`, comments `macspoofchk-<id>` with id = containerID-ifname) so either
 * implementation can tear down what the other set up.
 */
import { nftApply, nftListThenApply, run } from '../exec';

const TABLE = 'bridge nat';
const refID = (containerID: string, ifname: string) => `${containerID}-${ifname}`;
const ifaceChain = (id: string) => `cni-br-iface-${id}`;
const q = (s: string) => JSON.stringify(s);

export function spoofCheckScript(hostVeth: string, mac: string, containerID: string, ifname: string): string {
  const id = refID(containerID, ifname);
  // Chain names are bare words in nft syntax (containerID and ifname characters fit them).
  const iface = ifaceChain(id);
  const macChain = `${ifaceChain(id)}-mac`;
  const comment = `comment ${q(`macspoofchk-${id}`)}`;
  return [
    `add table ${TABLE}`,
    `add chain ${TABLE} PREROUTING { type filter hook prerouting priority -300; policy accept; }`,
    `add chain ${TABLE} ${iface}`,
    `add chain ${TABLE} ${macChain}`,
    `flush chain ${TABLE} ${iface}`,
    `flush chain ${TABLE} ${macChain}`,
    `add rule ${TABLE} PREROUTING iifname ${q(hostVeth)} jump ${iface} ${comment}`,
    `add rule ${TABLE} ${iface} jump ${macChain} ${comment}`,
    `add rule ${TABLE} ${macChain} ether saddr ${mac} return ${comment}`,
    `add rule ${TABLE} ${macChain} drop ${comment}`,
  ].join('\n');
}

export const setupSpoofCheck = (hostVeth: string, mac: string, containerID: string, ifname: string) =>
  nftApply(spoofCheckScript(hostVeth, mac, containerID, ifname) + '\n', { scopeChain: `${TABLE} PREROUTING` });

/** Handles of PREROUTING rules carrying this attachment's comment, from `nft -a list chain` output. */
export function spoofRuleHandles(listing: string, containerID: string, ifname: string): number[] {
  const marker = `comment ${q(`macspoofchk-${refID(containerID, ifname)}`)}`;
  const out: number[] = [];
  for (const line of listing.split('\n')) {
    const m = / # handle (\d+)$/.exec(line);
    if (m && line.includes(marker)) out.push(Number(m[1]));
  }
  return out;
}

/** Removes the attachment's spoof check; nothing to do when it was never set up. */
export async function teardownSpoofCheck(containerID: string, ifname: string): Promise<void> {
  const id = refID(containerID, ifname);
  const script = (listing: string) =>
    [
      ...spoofRuleHandles(listing, containerID, ifname).map((h) => `delete rule ${TABLE} PREROUTING handle ${h}`),
      // `add` first so the deletes succeed whether or not the chains are there.
      `add chain ${TABLE} ${ifaceChain(id)}`,
      `add chain ${TABLE} ${ifaceChain(id)}-mac`,
      `flush chain ${TABLE} ${ifaceChain(id)}`,
      `flush chain ${TABLE} ${ifaceChain(id)}-mac`,
      `delete chain ${TABLE} ${ifaceChain(id)}-mac`,
      `delete chain ${TABLE} ${ifaceChain(id)}`,
    ].join('\n') + '\n';
  const scope = `${TABLE} PREROUTING`;
  // The listing and the removal in one nft process; with an nft that cannot, as two.
  if (await nftListThenApply(`list chain ${scope}`, (listing) => (listing === null ? undefined : script(listing)), { scopeChain: scope })) return;
  const listed = await run('nft', ['-a', 'list', 'chain', ...scope.split(' ')], { allowFailure: true });
  if (listed.code !== 0) return;
  await nftApply(script(listed.stdout), { resolveAtCommit: true, scopeChain: scope });
}

/** Whether the attachment's spoof check is in place (for CHECK). */
export async function spoofCheckPresent(containerID: string, ifname: string): Promise<boolean> {
  const listed = await run('nft', ['-a', 'list', 'chain', 'bridge', 'nat', 'PREROUTING'], { allowFailure: true });
  return listed.code === 0 && spoofRuleHandles(listed.stdout, containerID, ifname).length > 0;
}

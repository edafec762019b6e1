/**
 * DEL: idempotent and complete without the netns, the interface or its addresses. The host veth is found by
 * its derived name (checked against its alias) or prevResult's name; deleting it deletes the container end.
 * Masquerade rules are removed from the addresses in prevResult, or found by their chain and comments, in the
 * configured backend, and (found by name only) in the other one when the configured one had none.
 * IPAM, the veth, the rules and the spoof check are independent, so they run in parallel.
 */
import { firewall, onPath } from '../../lib/firewall/select';
import { delegateDel } from '../../lib/invoke';
import { deleteLink, linkState } from '../../lib/net/link';
import { attachmentAlias, hostVethName, VETH_NAME_ATTEMPTS } from '../../lib/net/names';
import { deleteLinkInNetns, netnsExists } from '../../lib/net/netns';
import { teardownSpoofCheck } from '../../lib/net/spoofcheck';
import type { CmdArgs } from '../../lib/skel';
import type { Result } from '../../lib/types/result';
import { loadConf, type BridgeConf } from './config';

/** The host veth of this attachment, if it is still there. */
function findHostVeth(conf: BridgeConf, a: Pick<CmdArgs, 'containerID' | 'ifname'>, prev?: Result): string | undefined {
  const alias = attachmentAlias(a.containerID, a.ifname);
  for (let attempt = 0; attempt < VETH_NAME_ATTEMPTS; attempt++) {
    const name = hostVethName(a.containerID, a.ifname, attempt);
    if (linkState(name)?.alias === alias) return name;
  }
  // An attachment made by another implementation (random name): trust prevResult if the port is on our bridge.
  for (const i of prev?.interfaces ?? []) {
    if (i.sandbox || i.name === conf.bridge) continue;
    if (linkState(i.name)?.master === conf.bridge) return i.name;
  }
  return undefined;
}

/** The container's addresses in prevResult (those of our interface, or all when interfaces are not listed). */
export function containerAddresses(prev: Result | undefined, ifname: string): string[] {
  const ifs = prev?.interfaces ?? [];
  return (prev?.ips ?? []).filter((ip) => ip.interface === undefined || !ifs.length || ifs[ip.interface]?.name === ifname).map((ip) => ip.address);
}

async function deleteVeth(conf: BridgeConf, a: CmdArgs): Promise<void> {
  const host = findHostVeth(conf, a, a.prevResult);
  if (host) return deleteLink(host);
  if (a.netns && netnsExists(a.netns)) await deleteLinkInNetns(a.netns, a.ifname);
}

export async function del(a: CmdArgs): Promise<void> {
  const conf = loadConf(a.raw, a.args);
  // Started in order of how long they take: each start holds this thread for a process spawn (1-2 ms), and
  // IPAM's release (a lock and a few files) is the shortest.
  const steps: Array<Promise<unknown>> = [deleteVeth(conf, a)];
  if (conf.ipMasq && conf.ipamType) {
    const key = { network: conf.network, containerID: a.containerID, ifname: a.ifname };
    const fw = firewall(conf.ipMasqBackend);
    const other = fw.name === 'iptables' ? 'nftables' : 'iptables';
    // The attachment may date from another ipMasqBackend: look there (by name) only when the configured backend
    // had nothing, so the usual DEL pays for one backend (on a busy node each probe costs tens of ms).
    steps.push(
      fw.delMasquerade({ ...key, addresses: containerAddresses(a.prevResult, a.ifname) }).then(async (found) => {
        if (!found && onPath(other === 'iptables' ? 'iptables' : 'nft')) await firewall(other).delMasquerade({ ...key, addresses: [] });
      }),
    );
  }
  if (conf.macSpoofChk) steps.push(teardownSpoofCheck(a.containerID, a.ifname));
  if (conf.ipamType) steps.push(delegateDel(conf.ipamType, { stdin: a.stdin, env: a.env, path: a.path, field: 'ipam.type' }));
  const settled = await Promise.allSettled(steps);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

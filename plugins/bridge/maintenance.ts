/** STATUS and GC: forwarded to IPAM, plus what the bridge itself depends on or leaves behind. */
import { CniError, ErrorCode } from '../../lib/errors';
import { firewall, onPath } from '../../lib/firewall/select';
import { delegateGC, delegateStatus } from '../../lib/invoke';
import { hasNetAdmin } from '../../lib/net/caps';
import { linkState } from '../../lib/net/link';
import type { CmdArgs } from '../../lib/skel';
import { validAttachments } from '../../lib/types/netconf';
import { loadConf } from './config';

const opts = (a: CmdArgs) => ({ stdin: a.stdin, env: a.env, path: a.path, field: 'ipam.type' });

export async function status(a: CmdArgs): Promise<void> {
  const conf = loadConf(a.raw, a.args);
  const br = linkState(conf.bridge);
  if (br && !br.isBridge) throw new CniError(ErrorCode.PluginNotAvailable, `bridge "${conf.bridge}" exists and is not a bridge: no container can be attached`);
  if (!hasNetAdmin()) throw new CniError(ErrorCode.PluginNotAvailable, 'this process lacks CAP_NET_ADMIN: it cannot create bridges or veth pairs');
  if (conf.ipMasq && conf.ipamType) {
    const fw = firewall(conf.ipMasqBackend);
    if (!(await fw.available())) throw new CniError(ErrorCode.PluginNotAvailable, `ipMasq: the ${fw.name} backend does not work here`);
  }
  if (conf.ipamType) await delegateStatus(conf.ipamType, opts(a));
}

export async function gc(a: CmdArgs): Promise<void> {
  const conf = loadConf(a.raw, a.args);
  const valid = validAttachments(a.raw).map((v) => ({ network: conf.network, containerID: v.containerID, ifname: v.ifname }));
  const steps: Array<Promise<unknown>> = [];
  if (conf.ipamType) steps.push(delegateGC(conf.ipamType, opts(a)));
  // Both backends: an attachment may have been made under another ipMasqBackend.
  if (onPath('iptables-restore')) steps.push(firewall('iptables').gcMasquerade(conf.network, valid));
  if (onPath('nft')) steps.push(firewall('nftables').gcMasquerade(conf.network, valid));
  const settled = await Promise.allSettled(steps);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

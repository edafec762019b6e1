/**
 * The node's conflist: bridge (gateway, no masquerade: the installer's node-wide rule does that, so pod-to-pod
 * traffic across nodes keeps its source) with host-local over the node's pod CIDRs, then portmap for
 * `portMappings`.
 */
import { parseCidr } from '../ip';
import type { InstallOptions } from './options';

export function buildConflist(o: Pick<InstallOptions, 'networkName' | 'bridge' | 'mtu' | 'ipamDataDir'>, podCidrs: readonly string[]): string {
  const families = podCidrs.map((c) => parseCidr(c)!.addr.family);
  const ipam = {
    type: 'host-local',
    ranges: podCidrs.map((subnet) => [{ subnet }]),
    routes: families.map((f) => ({ dst: f === 4 ? '0.0.0.0/0' : '::/0' })),
    ...(o.ipamDataDir ? { dataDir: o.ipamDataDir } : {}),
  };
  const conf = {
    cniVersion: '1.1.0',
    name: o.networkName,
    plugins: [
      { type: 'bridge', bridge: o.bridge, isGateway: true, ipMasq: false, hairpinMode: true, ...(o.mtu ? { mtu: o.mtu } : {}), ipam },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
  return JSON.stringify(conf, null, 2) + '\n';
}

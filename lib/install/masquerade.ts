/**
 * One masquerade rule set per node, owned by the installer: traffic from this node's pods to anywhere outside
 * the cluster's pod CIDRs (and not multicast) leaves with the node's address; pod-to-pod traffic keeps its
 * source. Two backends with the same meaning:
 * - nftables: table `inet cni_ts_masq`, replaced as a whole in one transaction;
 * - iptables: chain `CNI-TS-MASQ` in the nat table of each family, rewritten in one `iptables-restore --noflush`,
 *   jumped to from POSTROUTING.
 * Each carries a digest of its content in a comment, so a pass (or a restarted installer) reads back only our
 * own table or chain to know whether it is current.
 */
import { createHashLazily } from '../hash';
import { parseCidr, type Family } from '../ip';
import { iptablesRestore, nftApply, run } from '../exec';

export const MASQ_TABLE = 'cni_ts_masq';
export const MASQ_CHAIN = 'CNI-TS-MASQ';
export type MasqueradeBackendName = 'nftables' | 'iptables';

const digestOf = (text: string) => createHashLazily('sha256').update(text).digest('hex').slice(0, 16);
const ofFamily = (list: readonly string[], f: Family) => list.filter((c) => parseCidr(c)!.addr.family === f);
const MULTICAST = { 4: '224.0.0.0/4', 6: 'ff00::/8' } as const;

export interface MasqueradeBackend {
  readonly name: MasqueradeBackendName;
  /** Makes the node's rules match; returns whether anything was written. */
  sync(podCidrs: readonly string[], clusterCidrs: readonly string[]): Promise<boolean>;
}

export function nftScript(podCidrs: readonly string[], clusterCidrs: readonly string[]): { script: string; digest: string } {
  const lines: string[] = [];
  for (const f of [4, 6] as const) {
    const cluster = ofFamily(clusterCidrs, f);
    lines.push(`  set cluster${f} {`, `    type ${f === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval; auto-merge;`);
    if (cluster.length) lines.push(`    elements = { ${cluster.join(', ')} }`);
    lines.push('  }');
  }
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const f of [4, 6] as const) {
    const ip = f === 4 ? 'ip' : 'ip6';
    for (const c of ofFamily(podCidrs, f)) lines.push(`    ${ip} saddr ${c} ${ip} daddr != @cluster${f} ${ip} daddr != ${MULTICAST[f]} masquerade`);
  }
  lines.push('  }');
  const body = lines.join('\n');
  const digest = digestOf(body);
  // "add, delete, define" in one transaction: works whether or not the table exists, and is atomic.
  const script = [`table inet ${MASQ_TABLE}`, `delete table inet ${MASQ_TABLE}`, `table inet ${MASQ_TABLE} {`, `  comment "cni-install ${digest}"`, body, '}', ''].join('\n');
  return { script, digest };
}

export const nftablesMasquerade: MasqueradeBackend = {
  name: 'nftables',
  async sync(podCidrs, clusterCidrs) {
    const { script, digest } = nftScript(podCidrs, clusterCidrs);
    const r = await run('nft', ['list', 'table', 'inet', MASQ_TABLE], { allowFailure: true });
    if (r.code === 0 && r.stdout.includes(`comment "cni-install ${digest}"`)) return false;
    await nftApply(script);
    return true;
  },
};

const JUMP = ['-m', 'comment', '--comment', 'cni-install: masquerade pod traffic leaving the cluster', '-j', MASQ_CHAIN];

/** The iptables-restore payload for one family's chain (one pod CIDR per family, as Kubernetes allocates). */
export function iptablesPayload(podCidr: string, clusterCidrs: readonly string[]): { payload: string; digest: string } {
  const f = parseCidr(podCidr)!.addr.family;
  const rules = [
    `! -s ${podCidr} -j RETURN`,
    ...ofFamily(clusterCidrs, f).map((c) => `-d ${c} -j RETURN`),
    `-d ${MULTICAST[f]} -j RETURN`,
    '-j MASQUERADE',
  ];
  const digest = digestOf(rules.join('\n'));
  const lines = ['*nat', `:${MASQ_CHAIN} - [0:0]`];
  lines.push(`-A ${MASQ_CHAIN} -m comment --comment "cni-install ${digest}" ${rules[0]}`, ...rules.slice(1).map((r) => `-A ${MASQ_CHAIN} ${r}`), 'COMMIT', '');
  return { payload: lines.join('\n'), digest };
}

export const iptablesMasquerade: MasqueradeBackend = {
  name: 'iptables',
  async sync(podCidrs, clusterCidrs) {
    let wrote = false;
    for (const podCidr of podCidrs) {
      const f = parseCidr(podCidr)!.addr.family;
      const cmd = f === 4 ? 'iptables' : 'ip6tables';
      const { payload, digest } = iptablesPayload(podCidr, clusterCidrs);
      // Our chain by name and one check of our jump: never a listing of anyone else's rules.
      const chain = await run(cmd, ['-w', '5', '-t', 'nat', '-S', MASQ_CHAIN], { allowFailure: true });
      const jump = await run(cmd, ['-w', '5', '-t', 'nat', '-C', 'POSTROUTING', ...JUMP], { allowFailure: true });
      if (chain.code === 0 && chain.stdout.includes(`cni-install ${digest}`) && jump.code === 0) continue;
      // Declaring the chain in a --noflush restore empties it first, so the rewrite is one atomic replace.
      const addJump = jump.code === 0 ? '' : `*nat\n-A POSTROUTING ${JUMP.map((a) => (a.includes(' ') ? `"${a}"` : a)).join(' ')}\nCOMMIT\n`;
      await iptablesRestore(f, payload + addJump);
      wrote = true;
    }
    return wrote;
  },
};

export const masqueradeBackend = (name: MasqueradeBackendName): MasqueradeBackend => (name === 'iptables' ? iptablesMasquerade : nftablesMasquerade);

/**
 * One masquerade rule set per node, owned by the installer: traffic from this node's pods to anywhere outside
 * the cluster's pod CIDRs leaves with the node's address; pod-to-pod traffic keeps its source. nftables table
 * `inet cni_ts_masq`, replaced as a whole in one transaction so a re-sync never leaves it half-written. The
 * table's comment carries a digest of its content, so a pass (or a restarted installer) reads back only that
 * to know whether the table is current.
 */
import { createHash } from 'node:crypto';
import { parseCidr } from '../ip';
import { nftApply, run } from '../exec';

export const MASQ_TABLE = 'cni_ts_masq';

export interface MasqueradeTable {
  script: string;
  digest: string;
}

export function masqueradeTable(podCidrs: readonly string[], clusterCidrs: readonly string[]): MasqueradeTable {
  const body = masqueradeBody(podCidrs, clusterCidrs);
  const digest = createHash('sha256').update(body).digest('hex').slice(0, 16);
  const script = [`table inet ${MASQ_TABLE}`, `delete table inet ${MASQ_TABLE}`, `table inet ${MASQ_TABLE} {`, `  comment "cni-install ${digest}"`, body, '}', ''].join('\n');
  return { script, digest };
}

function masqueradeBody(podCidrs: readonly string[], clusterCidrs: readonly string[]): string {
  const byFam = (list: readonly string[], f: 4 | 6) => list.filter((c) => parseCidr(c)!.addr.family === f);
  const lines: string[] = [];
  for (const f of [4, 6] as const) {
    const cluster = byFam(clusterCidrs, f);
    const type = f === 4 ? 'ipv4_addr' : 'ipv6_addr';
    lines.push(`  set cluster${f} {`, `    type ${type}; flags interval; auto-merge;`);
    if (cluster.length) lines.push(`    elements = { ${cluster.join(', ')} }`);
    lines.push('  }');
  }
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  for (const c of podCidrs) {
    const f = parseCidr(c)!.addr.family;
    const ip = f === 4 ? 'ip' : 'ip6';
    const mcast = f === 4 ? '224.0.0.0/4' : 'ff00::/8';
    lines.push(`    ${ip} saddr ${c} ${ip} daddr != @cluster${f} ${ip} daddr != ${mcast} masquerade`);
  }
  lines.push('  }');
  return lines.join('\n');
}

/** The digest in our table's comment, or undefined when the table is missing; lists our table only. */
export async function installedDigest(): Promise<string | undefined> {
  const r = await run('nft', ['list', 'table', 'inet', MASQ_TABLE], { allowFailure: true });
  return r.code === 0 ? /comment "cni-install ([0-9a-f]+)"/.exec(r.stdout)?.[1] : undefined;
}

export async function applyMasquerade(script: string): Promise<void> {
  await nftApply(script);
}

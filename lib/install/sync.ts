/**
 * One pass of the installer: learn the node's pod CIDRs and its peers, then make the node match: executables,
 * conflist, routes, masquerade. Everything is checked before anything is written, so a bad API answer or a
 * node without a podCIDR changes nothing. Each step is skipped when the node already matches.
 */
import { join } from 'node:path';
import { mkdirSync, statSync } from 'node:fs';
import { contains, hasHostBits, networkOf, parseCidr } from '../ip';
import { ensureSysctl } from '../net/sysctl';
import { installBinaries } from './binaries';
import { buildConflist } from './conflist';
import { writeIfChanged } from './files';
import { getNode, listNodes, type ApiConfig, type NodeInfo } from './k8s';
import { masqueradeBackend } from './masquerade';
import type { InstallOptions } from './options';
import { desiredRoutes, syncRoutes, type Route } from './routes';

export class SyncError extends Error {}

/** What a pass learned about the cluster. */
export interface ClusterView {
  podCidrs: string[];
  clusterCidrs: string[];
  routes: Route[];
}

export async function observe(o: InstallOptions): Promise<ClusterView> {
  const api: ApiConfig | undefined = o.apiServer ? { server: o.apiServer, tokenFile: o.tokenFile, caFile: o.caFile } : undefined;
  let podCidrs = o.podCidrs;
  let nodes: NodeInfo[] = [];
  if (api && (o.routes || !podCidrs.length || !o.clusterCidrs.length)) {
    nodes = await listNodes(api);
  }
  if (!podCidrs.length) {
    const self = nodes.find((n) => n.name === o.nodeName) ?? (await getNode(api!, o.nodeName!));
    if (!self.podCidrs.length) throw new SyncError(`node ${o.nodeName} has no spec.podCIDRs yet (is the controller manager running with --allocate-node-cidrs?)`);
    podCidrs = self.podCidrs;
  }
  const clusterCidrs = o.clusterCidrs.length ? o.clusterCidrs : [...new Set([...podCidrs, ...nodes.flatMap((n) => n.podCidrs)])];
  for (const c of podCidrs) {
    const p = parseCidr(c)!;
    if (o.clusterCidrs.length && !o.clusterCidrs.some((k) => within(k, c))) throw new SyncError(`pod CIDR ${c} is not inside the cluster CIDRs ${o.clusterCidrs.join(', ')}`);
    if (p.prefix > (p.addr.family === 4 ? 30 : 126)) throw new SyncError(`pod CIDR ${c} is too small for host-local (at most /30 or /126)`);
    if (hasHostBits(p)) throw new SyncError(`pod CIDR ${c} has host bits set`);
  }
  const routes = o.routes ? [...desiredRoutes(o.nodeName ?? '', nodes), ...o.staticRoutes] : [];
  return { podCidrs, clusterCidrs, routes };
}

const within = (outer: string, inner: string) => {
  const a = parseCidr(outer)!;
  const b = parseCidr(inner)!;
  return b.prefix >= a.prefix && contains(a, networkOf(b));
};

/** State kept between passes so unchanged steps cost nothing. */
export class Syncer {
  private binaries: { name: string; id: string }[] | undefined;
  private readonly warned = new Set<string>();

  constructor(private readonly o: InstallOptions, private readonly log: (msg: string) => void) {}

  private binariesIntact(): boolean {
    if (!this.binaries) return false;
    try {
      return this.binaries.every((b) => idOf(join(this.o.binDir, b.name)) === b.id);
    } catch {
      return false;
    }
  }

  async pass(): Promise<void> {
    const o = this.o;
    const view = await observe(o);

    if (!this.binariesIntact()) {
      mkdirSync(o.binDir, { recursive: true });
      const changes = await installBinaries(o.sourceDir, o.binDir, o.plugins);
      for (const c of changes) this.log(`${c.action} ${c.name} into ${o.binDir}`);
      this.binaries = o.plugins.map((name) => ({ name, id: idOf(join(o.binDir, name)) }));
    }

    mkdirSync(o.confDir, { recursive: true });
    const confPath = join(o.confDir, o.confName);
    if (writeIfChanged(confPath, buildConflist(o, view.podCidrs))) this.log(`wrote ${confPath} for pod CIDRs ${view.podCidrs.join(', ')}`);

    // The node forwards between its bridge and the underlay (the bridge plugin also sets these on first ADD).
    // A container without privileges sees /proc/sys read-only; the bridge plugin sets forwarding on ADD anyway.
    for (const c of view.podCidrs) {
      const key = parseCidr(c)!.addr.family === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
      try {
        ensureSysctl(key, 1);
      } catch (e) {
        if (!this.warned.has(key)) this.log(`warning: ${(e as Error).message}; the bridge plugin will enable it on the first pod`);
        this.warned.add(key);
      }
    }

    if (o.routes) for (const line of await syncRoutes(view.routes)) this.log(line);

    if (o.masquerade) {
      const backend = masqueradeBackend(o.masqueradeBackend);
      if (await backend.sync(view.podCidrs, view.clusterCidrs)) {
        const where = backend.name === 'nftables' ? 'nft table inet cni_ts_masq' : 'iptables nat chain CNI-TS-MASQ';
        this.log(`masquerade from ${view.podCidrs.join(', ')} to outside ${view.clusterCidrs.join(', ')} (${where})`);
      }
    }
  }
}

const idOf = (path: string) => {
  const s = statSync(path);
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
};

/**
 * The installer's command line. Every path is a flag (tests and `--once` runs never touch the host's real
 * /opt/cni/bin); the in-cluster defaults come from the DaemonSet's environment (NODE_NAME from the downward
 * API, KUBERNETES_SERVICE_HOST/PORT and the service account files from the kubelet).
 */
import { dirname } from 'node:path';
import { parseCidr, parseIp } from '../ip';
import { onPath } from '../firewall/select';
import type { MasqueradeBackendName } from './masquerade';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  /** Where the executables to install are (default: beside this executable). */
  sourceDir: string;
  plugins: string[];
  confName: string;
  networkName: string;
  bridge: string;
  mtu?: number;
  ipamDataDir?: string;
  nodeName?: string;
  /** Pod CIDRs given on the command line; when empty they come from the Node object. */
  podCidrs: string[];
  /** The cluster's pod CIDRs (not masqueraded); when empty, the union of every node's pod CIDRs. */
  clusterCidrs: string[];
  /** Static routes "CIDR=GATEWAY" for use without a cluster. */
  staticRoutes: { dst: string; via: string }[];
  apiServer?: string;
  tokenFile: string;
  caFile: string;
  routes: boolean;
  masquerade: boolean;
  masqueradeBackend: MasqueradeBackendName;
  once: boolean;
  intervalMs: number;
}

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';

export const USAGE = `usage: cni-install [flags]
  --bin-dir DIR          where plugin executables go (default /host/opt/cni/bin)
  --conf-dir DIR         where the conflist goes (default /host/etc/cni/net.d)
  --source-dir DIR       where the executables to install are (default: this executable's folder)
  --plugins LIST         executables to install (default bridge,host-local,portmap)
  --conf-name NAME       conflist file name (default 10-cni-ts.conflist)
  --network-name NAME    network name in the conflist (default cni-ts)
  --bridge NAME          bridge name (default cni0)
  --mtu N                bridge MTU
  --ipam-data-dir DIR    host-local dataDir (default: host-local's own)
  --node-name NAME       this node (default $NODE_NAME)
  --pod-cidr CIDR        this node's pod CIDR (repeat for dual stack; default: the Node's spec.podCIDRs)
  --cluster-cidr CIDR    the cluster's pod CIDRs, not masqueraded (repeat; default $CLUSTER_CIDRS or every node's pod CIDRs)
  --route CIDR=GATEWAY   a static route to another node's pods (repeat; for use without a cluster)
  --api-server URL       Kubernetes API (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
  --token-file FILE      bearer token (default ${SA}/token)
  --ca-file FILE         API CA bundle (default ${SA}/ca.crt)
  --no-routes            do not manage routes to other nodes' pod CIDRs
  --no-masquerade        do not manage the masquerade rules
  --masquerade-backend B nftables (table inet cni_ts_masq) or iptables (nat chain CNI-TS-MASQ);
                         default nftables when nft is installed
  --interval SECONDS     re-sync period (default 30)
  --once                 sync once and exit (non-zero when the sync failed)
`;

export class UsageError extends Error {}

function cidrOrThrow(flag: string, v: string): string {
  const c = parseCidr(v);
  if (!c) throw new UsageError(`${flag}: not a CIDR: ${JSON.stringify(v)}`);
  return v;
}

const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv, execPath: string): InstallOptions {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  const o: InstallOptions = {
    binDir: '/host/opt/cni/bin',
    confDir: '/host/etc/cni/net.d',
    sourceDir: dirname(execPath),
    plugins: ['bridge', 'host-local', 'portmap'],
    confName: '10-cni-ts.conflist',
    networkName: 'cni-ts',
    bridge: 'cni0',
    nodeName: env.NODE_NAME || undefined,
    podCidrs: [],
    clusterCidrs: list(env.CLUSTER_CIDRS).map((c) => cidrOrThrow('CLUSTER_CIDRS', c)),
    staticRoutes: [],
    apiServer: host ? `https://${host.includes(':') ? `[${host}]` : host}:${port}` : undefined,
    tokenFile: `${SA}/token`,
    caFile: `${SA}/ca.crt`,
    routes: true,
    masquerade: true,
    masqueradeBackend: onPath('nft') ? 'nftables' : 'iptables',
    once: false,
    intervalMs: 30_000,
  };
  let clusterFromFlags = false;
  for (let i = 0; i < argv.length; i++) {
    // Both "--flag value" and "--flag=value" (the usual form in manifests).
    const eq = argv[i]!.startsWith('--') ? argv[i]!.indexOf('=') : -1;
    const flag = eq > 0 ? argv[i]!.slice(0, eq) : argv[i]!;
    const inline = eq > 0 ? argv[i]!.slice(eq + 1) : undefined;
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--bin-dir': o.binDir = value(); break;
      case '--conf-dir': o.confDir = value(); break;
      case '--source-dir': o.sourceDir = value(); break;
      case '--plugins': o.plugins = list(value()); break;
      case '--conf-name': o.confName = value(); break;
      case '--network-name': o.networkName = value(); break;
      case '--bridge': o.bridge = value(); break;
      case '--ipam-data-dir': o.ipamDataDir = value(); break;
      case '--node-name': o.nodeName = value(); break;
      case '--pod-cidr': o.podCidrs.push(cidrOrThrow(flag, value())); break;
      case '--cluster-cidr':
        if (!clusterFromFlags) o.clusterCidrs = [];
        clusterFromFlags = true;
        o.clusterCidrs.push(cidrOrThrow(flag, value()));
        break;
      case '--api-server': o.apiServer = value(); break;
      case '--token-file': o.tokenFile = value(); break;
      case '--ca-file': o.caFile = value(); break;
      case '--no-routes': o.routes = false; break;
      case '--no-masquerade': o.masquerade = false; break;
      case '--masquerade-backend': {
        const v = value();
        if (v !== 'nftables' && v !== 'iptables') throw new UsageError(`--masquerade-backend: must be nftables or iptables, got ${JSON.stringify(v)}`);
        o.masqueradeBackend = v;
        break;
      }
      case '--once': o.once = true; break;
      case '--mtu': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 68 || n > 65535) throw new UsageError(`--mtu: not an MTU (68..65535): ${JSON.stringify(v)}`);
        o.mtu = n;
        break;
      }
      case '--interval': {
        const v = value();
        const n = Number(v);
        if (!(n > 0) || n > 86400) throw new UsageError(`--interval: not a number of seconds (0..86400]: ${JSON.stringify(v)}`);
        o.intervalMs = n * 1000;
        break;
      }
      case '--route': {
        const v = value();
        const [dst = '', via = '', ...rest] = v.split('=');
        if (rest.length || !parseCidr(dst) || parseIp(via)?.family !== parseCidr(dst)?.addr.family) throw new UsageError(`--route: expected CIDR=GATEWAY, got ${JSON.stringify(v)}`);
        o.staticRoutes.push({ dst, via });
        break;
      }
      default:
        throw new UsageError(`unknown flag ${JSON.stringify(flag)}`);
    }
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(o.networkName)) throw new UsageError(`--network-name: not a valid network name: ${JSON.stringify(o.networkName)}`);
  if (!o.bridge || o.bridge.length > 15 || /[/:\s]/.test(o.bridge)) throw new UsageError(`--bridge: not an interface name: ${JSON.stringify(o.bridge)}`);
  if (!o.plugins.length) throw new UsageError('--plugins: nothing to install');
  for (const p of o.plugins) if (!/^[\w.-]+$/.test(p)) throw new UsageError(`--plugins: not a file name: ${JSON.stringify(p)}`);
  if (!o.podCidrs.length && !o.apiServer) throw new UsageError('no pod CIDR: give --pod-cidr, or run in a cluster (KUBERNETES_SERVICE_HOST) or with --api-server');
  if (!o.podCidrs.length && !o.nodeName) throw new UsageError('no node name: set NODE_NAME (downward API spec.nodeName) or --node-name');
  return o;
}

/**
 * A Kubernetes-shaped network in namespaces, with no cluster: an underlay switch namespace (bridge br0, also the
 * router to "outside" and the home of the API stand-in), node namespaces wired to br0, an outside namespace
 * beyond the router, and pod namespaces. Nodes run dist/cni-install against the API stand-in; pods are attached
 * by running the installed conflist's executables inside the node namespace, as a kubelet's runtime would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_REFERENCE, must, netnsPath, ROOT, sh, withJson, type ExecResult, type Sandbox } from '../helpers/netns';

export const INSTALLER = join(ROOT, 'dist', 'cni-install');
const FIXTURES = join(__dirname, 'fixtures');
export const API_ADDR = '192.0.2.1';
export const API_PORT = 6443;
export const OUTSIDE_ADDR = '198.51.100.100';
export const OUTSIDE_ADDR6 = '2001:db8:4c::100';
const UNDERLAY_GW6 = '2001:db8:4b::1';
export const TOKEN = 'test-token-0123456789';

export interface NodeSpec {
  name: string;
  ip: string;
  /** An IPv6 InternalIP on the underlay (2001:db8:4b::/64), for dual-stack clusters. */
  ip6?: string;
  podCidrs?: string[];
  /** More installer flags for this node (e.g. another masquerade backend). */
  flags?: string[];
}

export interface ClusterNode extends NodeSpec {
  ns: string;
  binDir: string;
  confDir: string;
  dataDir: string;
}

export interface Pod {
  name: string;
  ns: string;
  node: ClusterNode;
  ip: string;
  ip6?: string;
  /** Each plugin's result, in chain order (for DEL). */
  results: unknown[];
  portMappings: unknown[];
}

/** Starts a long-running process inside a namespace and resolves once it prints `ready` on stdout. */
export function startIn(ns: string, cmd: string, args: string[], ready = 'listening'): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(ready)) resolve(child);
    });
    child.stderr!.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} in ${ns} exited ${code} before it was ready: ${err}`)));
  });
}

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  readonly pods: Pod[] = [];
  outsideNs = '';
  private readonly children: ChildProcess[] = [];
  readonly nodesFile: string;
  readonly caFile: string;
  readonly tokenFile: string;
  readonly sourceDir: string;

  constructor(readonly s: Sandbox, sourceDir: string) {
    this.sourceDir = sourceDir;
    this.nodesFile = join(s.dir, 'nodes.json');
    this.caFile = join(s.dir, 'ca.crt');
    this.tokenFile = join(s.dir, 'token');
  }

  /** The underlay, the outside, the API stand-in and the node namespaces (nothing installed yet). */
  async up(specs: NodeSpec[]): Promise<void> {
    const s = this.s;
    const hostLines = ['link add br0 type bridge', 'link set br0 up', `addr add ${API_ADDR}/24 dev br0`];
    for (const spec of specs) {
      const ns = await s.container('k8n');
      const dir = join(s.dir, spec.name);
      const node: ClusterNode = { ...spec, ns, binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), dataDir: join(dir, 'ipam') };
      mkdirSync(dir, { recursive: true });
      this.nodes.push(node);
      const port = `u${this.nodes.length}`;
      hostLines.push(`link add ${port} type veth peer name eth0 netns ${netnsPath(ns)}`, `link set ${port} master br0 up`);
    }
    this.outsideNs = await s.container('k8o');
    hostLines.push(`link add out0 type veth peer name eth0 netns ${netnsPath(this.outsideNs)}`, 'link set out0 up', 'addr add 198.51.100.1/24 dev out0');
    const v6 = specs.some((n) => n.ip6);
    // Static addresses skip duplicate address detection, so the underlay is usable at once.
    if (v6) hostLines.push(`addr add ${UNDERLAY_GW6}/64 dev br0 nodad`, 'addr add 2001:db8:4c::1/64 dev out0 nodad');
    await must('ip', ['-n', s.hostNs, '-batch', '-'], { input: hostLines.join('\n') + '\n' });
    await must('ip', ['netns', 'exec', s.hostNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const n of this.nodes) {
      const six = n.ip6 ? `addr add ${n.ip6}/64 dev eth0 nodad\nroute add ::/0 via ${UNDERLAY_GW6}\n` : '';
      await must('ip', ['-n', n.ns, '-batch', '-'], { input: `link set eth0 up\naddr add ${n.ip}/24 dev eth0\nroute add default via ${API_ADDR}\n${six}` });
    }
    const six = v6 ? `addr add ${OUTSIDE_ADDR6}/64 dev eth0 nodad\nroute add ::/0 via 2001:db8:4c::1\n` : '';
    await must('ip', ['-n', this.outsideNs, '-batch', '-'], { input: `link set eth0 up\naddr add ${OUTSIDE_ADDR}/24 dev eth0\nroute add default via 198.51.100.1\n${six}` });

    const key = join(s.dir, 'api.key');
    await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', this.caFile, '-days', '1', '-subj', '/CN=kube-apiserver', '-addext', `subjectAltName=IP:${API_ADDR}`]);
    writeFileSync(this.tokenFile, TOKEN + '\n');
    this.setNodes(specs);
    this.children.push(await startIn(s.hostNs, process.execPath, [join(FIXTURES, 'apiserver.cjs'), API_ADDR, String(API_PORT), this.caFile, key, this.nodesFile, TOKEN]));
  }

  /** What the API stand-in serves as the Node list from now on. */
  setNodes(specs: NodeSpec[]): void {
    const items = specs.map((n) => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name },
      spec: n.podCidrs ? { podCIDR: n.podCidrs[0], podCIDRs: n.podCidrs } : {},
      status: { addresses: [{ type: 'InternalIP', address: n.ip }, ...(n.ip6 ? [{ type: 'InternalIP', address: n.ip6 }] : []), { type: 'Hostname', address: n.name }] },
    }));
    writeFileSync(this.nodesFile, JSON.stringify(items));
  }

  installerArgs(node: ClusterNode, extra: string[] = []): string[] {
    return [
      '--node-name', node.name,
      '--api-server', `https://${API_ADDR}:${API_PORT}`,
      '--token-file', this.tokenFile,
      '--ca-file', this.caFile,
      '--source-dir', this.sourceDir,
      '--bin-dir', node.binDir,
      '--conf-dir', node.confDir,
      '--ipam-data-dir', node.dataDir,
      ...(node.flags ?? []),
      ...extra,
    ];
  }

  /** Runs the installer once on a node (in its namespace). */
  install(node: ClusterNode, extra: string[] = []): Promise<ExecResult> {
    return sh('ip', ['netns', 'exec', node.ns, INSTALLER, '--once', ...this.installerArgs(node, extra)]);
  }

  /** Starts the installer as a DaemonSet pod would run it (until SIGTERM). */
  startInstaller(node: ClusterNode, extra: string[] = []): ChildProcess & { log: () => string } {
    const child = spawn('ip', ['netns', 'exec', node.ns, INSTALLER, ...this.installerArgs(node, extra)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (d) => (log += d));
    child.stdout!.on('data', (d) => (log += d));
    this.children.push(child);
    return Object.assign(child, { log: () => log });
  }

  conflist(node: ClusterNode): { cniVersion: string; name: string; plugins: Record<string, unknown>[] } {
    return JSON.parse(readFileSync(join(node.confDir, '10-cni-ts.conflist'), 'utf8'));
  }

  /** Runs one plugin of the node's conflist inside the node namespace, as libcni would. */
  private async plugin(pod: { ns: string; name: string }, node: ClusterNode, cmd: string, conf: Record<string, unknown>): Promise<ExecResult & { json?: any }> {
    const env = {
      PATH: process.env.PATH,
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: pod.name,
      CNI_NETNS: netnsPath(pod.ns),
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
      CNI_PATH: node.binDir,
    };
    return withJson(await sh('ip', ['netns', 'exec', node.ns, join(node.binDir, String(conf.type))], { input: JSON.stringify(conf), env }));
  }

  /** The conflist's plugin configs as a runtime passes them: name, cniVersion, capabilities as runtimeConfig. */
  private pluginConf(list: ReturnType<Cluster['conflist']>, p: Record<string, unknown>, portMappings: unknown[], prevResult?: unknown) {
    const { capabilities, ...rest } = p as { capabilities?: Record<string, boolean> };
    const runtimeConfig = capabilities?.portMappings && portMappings.length ? { portMappings } : undefined;
    // The Go reference v1.1.1 predates CNI 1.1.0; side-by-side runs speak 1.0.0 to it.
    const cniVersion = IS_REFERENCE ? '1.0.0' : list.cniVersion;
    return { ...rest, cniVersion, name: list.name, ...(runtimeConfig ? { runtimeConfig } : {}), ...(prevResult ? { prevResult } : {}) };
  }

  /** Attaches a new pod on `node` through the node's conflist (ADD through the whole chain). */
  async addPod(node: ClusterNode, portMappings: unknown[] = []): Promise<Pod> {
    const ns = await this.s.container('k8p');
    const list = this.conflist(node);
    const pod = { name: ns, ns };
    let prev: unknown;
    const results: unknown[] = [];
    for (const p of list.plugins) {
      const r = await this.plugin(pod, node, 'ADD', this.pluginConf(list, p, portMappings, prev));
      if (r.code !== 0) throw new Error(`${String(p.type)} ADD for ${pod.name} on ${node.name} failed (${r.code}): ${r.stdout} ${r.stderr}`);
      prev = r.json;
      results.push(r.json);
    }
    const ips = (prev as { ips: { address: string }[] }).ips.map((i) => i.address.split('/')[0]!);
    const full: Pod = { ...pod, node, ip: ips.find((a) => !a.includes(':'))!, ip6: ips.find((a) => a.includes(':')), results, portMappings };
    this.pods.push(full);
    return full;
  }

  /** DEL through the chain in reverse, as a runtime does; returns the failures (empty when all succeeded). */
  async delPod(pod: Pod): Promise<string[]> {
    const list = this.conflist(pod.node);
    const failures: string[] = [];
    const last = pod.results[pod.results.length - 1];
    for (const p of [...list.plugins].reverse()) {
      const r = await this.plugin(pod, pod.node, 'DEL', this.pluginConf(list, p, pod.portMappings, last));
      if (r.code !== 0) failures.push(`${String(p.type)} DEL ${pod.name}: ${r.stdout} ${r.stderr}`);
    }
    return failures;
  }

  /** Waits (bounded) until no namespace of the cluster holds an IPv6 address still in duplicate address detection. */
  async settle(): Promise<void> {
    const all = [...this.nodes.map((n) => n.ns), ...this.pods.map((p) => p.ns)];
    for (let i = 0; i < 50; i++) {
      const tentative = await Promise.all(all.map((ns) => sh('ip', ['-n', ns, '-6', 'addr', 'show', 'tentative'])));
      if (tentative.every((r) => !r.stdout.trim())) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Starts the whoami service in a namespace. */
  async serveWhoami(ns: string, port: number): Promise<void> {
    this.children.push(await startIn(ns, process.execPath, [join(FIXTURES, 'whoami.cjs'), 'serve', String(port)]));
  }

  /** Connects from `ns` to each address; returns the peer address each server saw (or "error: ..."). */
  async probe(ns: string, port: number, addrs: string[]): Promise<Record<string, string>> {
    const r = await must('ip', ['netns', 'exec', ns, process.execPath, join(FIXTURES, 'whoami.cjs'), 'probe', String(port), ...addrs]);
    return JSON.parse(r);
  }

  async stop(): Promise<void> {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
        if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }
    }
  }
}

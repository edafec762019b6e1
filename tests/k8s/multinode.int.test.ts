/**
 * Three "nodes" (namespaces on one underlay bridge) run cni-install against an HTTPS stand-in for the
 * Kubernetes API, then get two pods each through the installed conflist. Shows: pod-to-pod across nodes keeps
 * the pod's source address; pods reach the outside masqueraded to their node; a hostPort published on one node
 * is reachable from another; the installer is idempotent, refuses to write a config without a podCIDR or from
 * a bad API answer, and its running loop follows changes in the Node list.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, PLUGIN_DIR, sh, Sandbox } from '../helpers/netns';
import { Cluster, OUTSIDE_ADDR, OUTSIDE_ADDR6, type ClusterNode, type NodeSpec } from './cluster';

const maybe = canUseNetns() ? describe : describe.skip;
jest.setTimeout(180_000);

// Dual stack. Pod CIDRs are documentation ranges (203.0.113.0/24 and 2001:db8:4d::/48 carved per node), used
// only inside the test's namespaces.
const SPECS: NodeSpec[] = [
  { name: 'node-a', ip: '192.0.2.11', ip6: '2001:db8:4b::11', podCidrs: ['203.0.113.0/26', '2001:db8:4d:1::/64'] },
  { name: 'node-b', ip: '192.0.2.12', ip6: '2001:db8:4b::12', podCidrs: ['203.0.113.64/26', '2001:db8:4d:2::/64'] },
  // node-c masquerades with the iptables backend, the others with nftables.
  { name: 'node-c', ip: '192.0.2.13', ip6: '2001:db8:4b::13', podCidrs: ['203.0.113.128/26', '2001:db8:4d:3::/64'], flags: ['--masquerade-backend', 'iptables'] },
];
const WHOAMI = 8080;
const HOST_PORT = 30080;

maybe('multi-node pod network installed by cni-install', () => {
  const s = new Sandbox();
  let c: Cluster;
  let nodes: ClusterNode[];

  beforeAll(async () => {
    await s.init();
    c = new Cluster(s, PLUGIN_DIR);
    await c.up(SPECS);
    nodes = c.nodes;
    for (const n of nodes) {
      const r = await c.install(n);
      if (r.code !== 0) throw new Error(`installer on ${n.name} failed: ${r.stderr}`);
    }
    for (const n of nodes) {
      // The first pod on node-a publishes the whoami port.
      await c.addPod(n, n.name === 'node-a' ? [{ hostPort: HOST_PORT, containerPort: WHOAMI, protocol: 'tcp' }] : []);
      await c.addPod(n);
    }
    await c.settle();
    for (const p of c.pods) await c.serveWhoami(p.ns, WHOAMI);
    await c.serveWhoami(c.outsideNs, WHOAMI);
  });

  afterAll(async () => {
    await c?.stop();
    await s.cleanup();
  });

  it('installs the executables, a conflist for each node pod CIDR, routes to the peers and the masquerade table', async () => {
    for (const n of nodes) {
      const list = c.conflist(n);
      expect(list.cniVersion).toBe('1.1.0');
      expect(list.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
      expect(list.plugins[0]).toMatchObject({ isGateway: true, ipMasq: false, ipam: { type: 'host-local', ranges: n.podCidrs!.map((subnet) => [{ subnet }]), dataDir: n.dataDir } });
      expect(list.plugins[1]).toMatchObject({ capabilities: { portMappings: true } });
      expect(readdirSync(n.binDir).filter((f) => !f.startsWith('.')).sort()).toEqual(['bridge', 'host-local', 'portmap']);
      // One copy of a multi-call executable, the other names hard links to it.
      const inodes = new Set(['bridge', 'host-local', 'portmap'].map((b) => statSync(join(n.binDir, b)).ino));
      const srcInodes = new Set(['bridge', 'host-local', 'portmap'].map((b) => statSync(join(PLUGIN_DIR, b)).ino));
      expect(inodes.size).toBe(srcInodes.size);

      const routes = [
        ...JSON.parse((await s.exec('ip', ['-j', 'route', 'show', 'proto', '199'], { ns: n.ns })).stdout),
        ...JSON.parse((await s.exec('ip', ['-j', '-6', 'route', 'show', 'proto', '199'], { ns: n.ns })).stdout),
      ];
      const want = SPECS.filter((o) => o.name !== n.name).flatMap((o) => [`${o.podCidrs![0]} via ${o.ip}`, `${o.podCidrs![1]} via ${o.ip6}`]);
      expect(routes.map((r: any) => `${r.dst} via ${r.gateway}`).sort()).toEqual(want.sort());

      const nft = await s.exec('nft', ['list', 'table', 'inet', 'cni_ts_masq'], { ns: n.ns });
      if (n.flags?.includes('iptables')) {
        expect(nft.code).not.toBe(0);
        const v4 = (await s.exec('iptables', ['-t', 'nat', '-S', 'CNI-TS-MASQ'], { ns: n.ns })).stdout;
        const v6 = (await s.exec('ip6tables', ['-t', 'nat', '-S', 'CNI-TS-MASQ'], { ns: n.ns })).stdout;
        expect(v4).toContain(`! -s ${n.podCidrs![0]} -m comment`);
        // The cluster CIDRs default to the union of every node's pod CIDRs.
        for (const o of SPECS) expect(v4).toContain(`-d ${o.podCidrs![0]} -j RETURN`);
        expect(v6).toContain(`! -s ${n.podCidrs![1]} -m comment`);
        expect((await s.exec('iptables', ['-t', 'nat', '-C', 'POSTROUTING', '-m', 'comment', '--comment', 'cni-install: masquerade pod traffic leaving the cluster', '-j', 'CNI-TS-MASQ'], { ns: n.ns })).code).toBe(0);
        continue;
      }
      expect(nft.stdout).toContain(`ip saddr ${n.podCidrs![0]} ip daddr != @cluster4`);
      expect(nft.stdout).toContain(`ip6 saddr ${n.podCidrs![1]} ip6 daddr != @cluster6`);
      // The cluster CIDRs default to the union of every node's pod CIDRs; nft merges the adjacent ones.
      expect(nft.stdout).toMatch(/elements = \{ 203\.0\.113\.0-203\.0\.113\.191 \}|elements = \{ 203\.0\.113\.0\/25,\s*203\.0\.113\.128\/26 \}/);
    }
  });

  it.each([
    ['node-a (nftables)', 0],
    ['node-c (iptables)', 2],
  ])('a second run on an unchanged node changes nothing: %s', async (_, i) => {
    const n = nodes[i]!;
    const conf = join(n.confDir, '10-cni-ts.conflist');
    const before = [statSync(conf).ino, statSync(conf).mtimeMs, statSync(join(n.binDir, 'bridge')).ino];
    const r = await c.install(n);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect([statSync(conf).ino, statSync(conf).mtimeMs, statSync(join(n.binDir, 'bridge')).ino]).toEqual(before);
  });

  it('every pod pings every other pod, and each peer sees the pod address as the source', async () => {
    const failures: string[] = [];
    for (const from of c.pods) {
      const targets = c.pods.filter((p) => p !== from).flatMap((t) => [{ to: t.ip, want: from.ip }, { to: t.ip6!, want: from.ip6! }]);
      const pings = await Promise.all(targets.map((t) => s.exec('busybox', ['ping', '-c', '1', '-W', '3', t.to], { ns: from.ns })));
      pings.forEach((r, i) => r.code !== 0 && failures.push(`ping ${from.name}(${from.node.name}) -> ${targets[i]!.to}: ${r.stdout}${r.stderr}`));
      const seen = await c.probe(from.ns, WHOAMI, targets.map((t) => t.to));
      for (const t of targets) if (seen[t.to] !== t.want) failures.push(`${t.want} -> ${t.to}: server saw ${seen[t.to]}`);
    }
    expect(failures).toEqual([]);
    // Across nodes, not only within one bridge.
    expect(new Set(c.pods.map((p) => p.node.name)).size).toBe(3);
  });

  it('a pod reaches an address outside the cluster CIDRs masqueraded to its node address', async () => {
    for (const p of c.pods) {
      const seen = await c.probe(p.ns, WHOAMI, [OUTSIDE_ADDR, OUTSIDE_ADDR6]);
      expect({ pod: p.name, seen }).toEqual({ pod: p.name, seen: { [OUTSIDE_ADDR]: p.node.ip, [OUTSIDE_ADDR6]: p.node.ip6 } });
    }
  });

  it('a hostPort published on node-a is reachable from node-b and from a pod on node-c', async () => {
    const [a, b] = nodes;
    const published = c.pods.find((p) => p.node === a && p.portMappings.length)!;
    expect(published).toBeDefined();
    // From node-b's own address: DNAT on node-a, source kept.
    const fromNode = await c.probe(b!.ns, HOST_PORT, [a!.ip]);
    expect(fromNode[a!.ip]).toBe(b!.ip);
    // From a pod on node-c: the node address is outside the cluster CIDRs, so node-c masquerades it.
    const podC = c.pods.find((p) => p.node.name === 'node-c')!;
    const fromPod = await c.probe(podC.ns, HOST_PORT, [a!.ip]);
    expect(fromPod[a!.ip]).toBe('192.0.2.13');
    // The rules are there (the DEL test below checks they go); iptables-nft rules show in the nft ruleset too.
    expect((await s.exec('nft', ['list', 'ruleset'], { ns: a!.ns })).stdout).toContain(String(HOST_PORT));
  });

  it('a node without a podCIDR, or a bad API answer, gets a message and no config', async () => {
    const n = nodes[2]!;
    const scratch = { ...n, binDir: join(s.dir, 'scratch', 'bin'), confDir: join(s.dir, 'scratch', 'net.d') };
    c.setNodes([...SPECS.slice(0, 2), { name: 'node-c', ip: n.ip }]);
    try {
      const r = await c.install(scratch);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('node node-c has no spec.podCIDRs');
      expect(existsSync(scratch.confDir)).toBe(false);
      expect(existsSync(scratch.binDir)).toBe(false);

      const { writeFileSync } = await import('node:fs');
      writeFileSync(c.nodesFile, 'this is not JSON');
      const bad = await c.install(scratch);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/answer is not JSON/);
      expect(existsSync(scratch.confDir)).toBe(false);

      c.setNodes(SPECS);
      const wrongToken = join(s.dir, 'wrong-token');
      writeFileSync(wrongToken, 'not-the-token\n');
      const unauthorized = await c.install(scratch, ['--token-file', wrongToken]);
      expect(unauthorized.code).toBe(1);
      expect(unauthorized.stderr).toMatch(/HTTP 401/);
      expect(existsSync(scratch.confDir)).toBe(false);
    } finally {
      c.setNodes(SPECS);
    }
  });

  it('the running installer retries until its node gets a podCIDR, then installs', async () => {
    const n = nodes[2]!;
    const scratch = { ...n, binDir: join(s.dir, 'late', 'bin'), confDir: join(s.dir, 'late', 'net.d') };
    c.setNodes([...SPECS.slice(0, 2), { name: 'node-c', ip: n.ip, ip6: n.ip6 }]);
    const daemon = c.startInstaller(scratch, ['--interval', '1']);
    const conf = join(scratch.confDir, '10-cni-ts.conflist');
    try {
      const waitFor = async (cond: () => boolean) => {
        for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 100));
        return cond();
      };
      expect(await waitFor(() => daemon.log().includes('node node-c has no spec.podCIDRs'))).toBe(true);
      expect(existsSync(conf)).toBe(false);
      c.setNodes(SPECS);
      expect(await waitFor(() => existsSync(conf))).toBe(true);
      expect(c.conflist(scratch).plugins[0]).toMatchObject({ ipam: { ranges: n.podCidrs!.map((subnet) => [{ subnet }]) } });
    } finally {
      c.setNodes(SPECS);
      const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
      daemon.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(daemon.log()).toMatch(/wrote .*10-cni-ts\.conflist for pod CIDRs 203\.0\.113\.128\/26, 2001:db8:4d:3::\/64/);
  });

  it('the running installer follows the Node list: a moved node gets its route updated, a removed one loses it', async () => {
    const [a, , cNode] = nodes;
    const routesOn = async (n: ClusterNode) => JSON.parse((await s.exec('ip', ['-j', 'route', 'show', 'proto', '199'], { ns: n.ns })).stdout).map((r: any) => `${r.dst} via ${r.gateway}`).sort();
    const waitFor = async (n: ClusterNode, want: string[]) => {
      for (let i = 0; i < 100; i++) {
        const got = await routesOn(n);
        if (JSON.stringify(got) === JSON.stringify(want)) return got;
        await new Promise((r) => setTimeout(r, 200));
      }
      return routesOn(n);
    };
    const daemon = c.startInstaller(a!, ['--interval', '1']);
    try {
      c.setNodes([SPECS[0]!, SPECS[1]!, { ...SPECS[2]!, ip: '192.0.2.23' }]);
      expect(await waitFor(a!, ['203.0.113.128/26 via 192.0.2.23', '203.0.113.64/26 via 192.0.2.12'])).toEqual(['203.0.113.128/26 via 192.0.2.23', '203.0.113.64/26 via 192.0.2.12']);
      c.setNodes(SPECS.slice(0, 2));
      expect(await waitFor(a!, ['203.0.113.64/26 via 192.0.2.12'])).toEqual(['203.0.113.64/26 via 192.0.2.12']);
      expect(daemon.log()).toContain('route del 203.0.113.128/26');
    } finally {
      c.setNodes(SPECS);
      const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
      daemon.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    // Back to the full list for node-a (and the other tests' state).
    expect((await c.install(a!)).code).toBe(0);
    expect(await routesOn(a!)).toEqual([`${cNode!.podCidrs![0]} via ${cNode!.ip}`, '203.0.113.64/26 via 192.0.2.12']);
  });

  it('DEL through the chain succeeds for every pod and releases its address', async () => {
    const failures: string[] = [];
    for (const p of c.pods) failures.push(...(await c.delPod(p)));
    expect(failures).toEqual([]);
    for (const n of nodes) {
      const dir = join(n.dataDir, 'cni-ts');
      const left = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d/.test(f)) : [];
      expect({ node: n.name, left }).toEqual({ node: n.name, left: [] });
    }
    const ruleset = await sh('ip', ['netns', 'exec', nodes[0]!.ns, 'nft', 'list', 'ruleset']);
    expect(ruleset.code).toBe(0);
    expect(ruleset.stdout).not.toContain(String(HOST_PORT));
  });
});

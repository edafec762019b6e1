/** The installer's pure parts and its file handling (temp dirs only; no root, no namespaces). */
import { utimesSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installBinaries, STAMP } from '../../lib/install/binaries';
import { buildConflist } from '../../lib/install/conflist';
import { writeIfChanged } from '../../lib/install/files';
import { parseNode } from '../../lib/install/k8s';
import { observe } from '../../lib/install/sync';
import { iptablesPayload, nftScript } from '../../lib/install/masquerade';
import { parseOptions, UsageError } from '../../lib/install/options';
import { desiredRoutes, routeChanges } from '../../lib/install/routes';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cni-install-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('options', () => {
  const env = { NODE_NAME: 'n1', KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' };
  it('defaults to the in-cluster API, the /host mounts and the folder of the executable', () => {
    const o = parseOptions([], env, '/cni/cni-install');
    expect(o).toMatchObject({ apiServer: 'https://[fd00::1]:6443', nodeName: 'n1', binDir: '/host/opt/cni/bin', confDir: '/host/etc/cni/net.d', sourceDir: '/cni', once: false, intervalMs: 30_000 });
  });
  it('takes "--flag value" and "--flag=value", repeated CIDRs and static routes', () => {
    const o = parseOptions(['--pod-cidr', '203.0.113.0/26', '--pod-cidr=2001:db8:1::/64', '--cluster-cidr=203.0.113.0/24', '--route', '203.0.113.64/26=192.0.2.12', '--once', '--interval=5'], {}, '/x/y');
    expect(o).toMatchObject({ podCidrs: ['203.0.113.0/26', '2001:db8:1::/64'], clusterCidrs: ['203.0.113.0/24'], staticRoutes: [{ dst: '203.0.113.64/26', via: '192.0.2.12' }], once: true, intervalMs: 5000 });
  });
  it.each([
    [['--pod-cidr', '203.0.113.0'], /--pod-cidr: not a CIDR: "203.0.113.0"/],
    [['--route', '203.0.113.0/26'], /--route: expected CIDR=GATEWAY/],
    [['--route', '203.0.113.0/26=2001:db8::1'], /--route: expected CIDR=GATEWAY/],
    [['--interval', '0'], /--interval/],
    [['--mtu', '9x'], /--mtu: not an MTU/],
    [['--bridge', 'a-very-long-bridge-name'], /--bridge: not an interface name/],
    [['--frobnicate'], /unknown flag "--frobnicate"/],
    [['--masquerade-backend', 'ipfw'], /--masquerade-backend: must be nftables or iptables/],
    [['--bin-dir'], /--bin-dir needs a value/],
  ])('rejects %j', (args, msg) => {
    expect(() => parseOptions(['--pod-cidr', '198.51.100.0/24', ...args], {}, '/x')).toThrow(msg);
  });
  it('needs a pod CIDR or an API, and a node name with the API', () => {
    expect(() => parseOptions([], {}, '/x')).toThrow(UsageError);
    expect(() => parseOptions(['--api-server', 'https://192.0.2.1:6443'], {}, '/x')).toThrow(/no node name/);
  });
});

describe('what a pass learns from flags alone', () => {
  const opts = (args: string[]) => parseOptions(args, {}, '/x');
  it('takes the pod CIDRs, the cluster CIDRs and the static routes as given', async () => {
    await expect(observe(opts(['--pod-cidr', '203.0.113.0/26', '--cluster-cidr', '203.0.113.0/24', '--route', '203.0.113.64/26=192.0.2.12']))).resolves.toEqual({
      podCidrs: ['203.0.113.0/26'],
      clusterCidrs: ['203.0.113.0/24'],
      routes: [{ dst: '203.0.113.64/26', via: '192.0.2.12' }],
    });
  });
  it.each([
    [['--pod-cidr', '203.0.113.0/26', '--cluster-cidr', '198.51.100.0/24'], /pod CIDR 203.0.113.0\/26 is not inside the cluster CIDRs 198.51.100.0\/24/],
    [['--pod-cidr', '203.0.113.0/31'], /too small for host-local/],
    [['--pod-cidr', '203.0.113.5/26'], /pod CIDR 203.0.113.5\/26 has host bits set/],
  ])('refuses %j before writing anything', async (args, msg) => {
    await expect(observe(opts(args))).rejects.toThrow(msg);
  });
});

describe('conflist', () => {
  it('is bridge (gateway, no masquerade) + host-local over each pod CIDR + portmap with portMappings, CNI 1.1.0', () => {
    const text = buildConflist({ networkName: 'cni-ts', bridge: 'cni0', ipamDataDir: '/d' }, ['203.0.113.0/26', '2001:db8:1::/64']);
    expect(JSON.parse(text)).toEqual({
      cniVersion: '1.1.0',
      name: 'cni-ts',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: '203.0.113.0/26' }], [{ subnet: '2001:db8:1::/64' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir: '/d' },
        },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
  });
  it('is rewritten only when it changes, atomically (a new inode)', () => {
    const f = join(dir, 'c.conflist');
    expect(writeIfChanged(f, 'a')).toBe(true);
    const ino = statSync(f).ino;
    expect(writeIfChanged(f, 'a')).toBe(false);
    expect(statSync(f).ino).toBe(ino);
    expect(writeIfChanged(f, 'b')).toBe(true);
    expect(statSync(f).ino).not.toBe(ino);
    expect(readFileSync(f, 'utf8')).toBe('b');
    expect(readdirSync(dir)).toEqual(['c.conflist']);
  });
});

describe('Node objects', () => {
  const node = (spec: unknown, addresses: unknown = [{ type: 'InternalIP', address: '192.0.2.11' }]) => ({ kind: 'Node', metadata: { name: 'n1' }, spec, status: { addresses } });
  it('reads podCIDRs (dual stack), falls back to podCIDR, and takes InternalIPs only', () => {
    expect(parseNode(node({ podCIDR: '203.0.113.0/26', podCIDRs: ['203.0.113.0/26', '2001:db8:1::/64'] }, [{ type: 'ExternalIP', address: '198.51.100.7' }, { type: 'InternalIP', address: '192.0.2.11' }, { type: 'InternalIP', address: '2001:db8::11' }]))).toEqual({
      name: 'n1',
      podCidrs: ['203.0.113.0/26', '2001:db8:1::/64'],
      internalIps: ['192.0.2.11', '2001:db8::11'],
    });
    expect(parseNode(node({ podCIDR: '203.0.113.0/26' })).podCidrs).toEqual(['203.0.113.0/26']);
    expect(parseNode(node({})).podCidrs).toEqual([]);
  });
  it.each([
    [node({ podCIDRs: ['nonsense'] }), /node n1: spec.podCIDRs holds "nonsense", not a CIDR/],
    [node({ podCIDRs: ['203.0.113.0/26', '203.0.113.64/26'] }), /one per family/],
    [{ kind: 'Status', code: 500 }, /expected a Node/],
    [{ kind: 'Node', metadata: {} }, /without metadata.name/],
  ])('rejects a bad answer %#', (v, msg) => expect(() => parseNode(v)).toThrow(msg));
});

describe('routes', () => {
  const nodes = [
    { name: 'a', podCidrs: ['203.0.113.0/26', '2001:db8:1::/64'], internalIps: ['192.0.2.11', '2001:db8::11'] },
    { name: 'b', podCidrs: ['203.0.113.64/26', '2001:db8:2::/64'], internalIps: ['192.0.2.12'] },
    { name: 'c', podCidrs: [], internalIps: ['192.0.2.13'] },
  ];
  it("route every other node's pod CIDRs via its InternalIP of that family", () => {
    expect(desiredRoutes('a', nodes)).toEqual([{ dst: '203.0.113.64/26', via: '192.0.2.12' }]);
    expect(desiredRoutes('b', nodes)).toEqual([
      { dst: '203.0.113.0/26', via: '192.0.2.11' },
      { dst: '2001:db8:1::/64', via: '2001:db8::11' },
    ]);
  });
  it('change only what differs: replace moved ones, delete gone ones, nothing when in sync', () => {
    const cur = [
      { dst: '203.0.113.64/26', via: '192.0.2.12' },
      { dst: '203.0.113.128/26', via: '192.0.2.13' },
      { dst: '203.0.113.192/26', via: '192.0.2.14' },
    ];
    const want = [
      { dst: '203.0.113.64/26', via: '192.0.2.12' },
      { dst: '203.0.113.128/26', via: '192.0.2.23' },
    ];
    expect(routeChanges(cur, want)).toEqual(['route del 203.0.113.192/26 proto 199', 'route replace 203.0.113.128/26 via 192.0.2.23 proto 199']);
    expect(routeChanges(want, want)).toEqual([]);
  });
});

describe('masquerade', () => {
  it("masquerades this node's pods to everything but the cluster CIDRs and multicast, per family, as one replace", () => {
    const { script: s, digest } = nftScript(['203.0.113.0/26', '2001:db8:1::/64'], ['203.0.113.0/24', '2001:db8::/48']);
    expect(s.split('\n').slice(0, 4)).toEqual(['table inet cni_ts_masq', 'delete table inet cni_ts_masq', 'table inet cni_ts_masq {', `  comment "cni-install ${digest}"`]);
    expect(s).toContain('elements = { 203.0.113.0/24 }');
    expect(s).toContain('elements = { 2001:db8::/48 }');
    expect(s).toContain('ip saddr 203.0.113.0/26 ip daddr != @cluster4 ip daddr != 224.0.0.0/4 masquerade');
    expect(s).toContain('ip6 saddr 2001:db8:1::/64 ip6 daddr != @cluster6 ip6 daddr != ff00::/8 masquerade');
  });
  it('names its content by a digest that changes with the CIDRs only', () => {
    const a = nftScript(['203.0.113.0/26'], ['203.0.113.0/24']).digest;
    expect(nftScript(['203.0.113.0/26'], ['203.0.113.0/24']).digest).toBe(a);
    expect(nftScript(['203.0.113.0/26'], ['203.0.113.0/25']).digest).not.toBe(a);
  });
  it('the iptables backend is one chain per family: return for other sources, the cluster and multicast, else masquerade', () => {
    const { payload, digest } = iptablesPayload('2001:db8:1::/64', ['203.0.113.0/24', '2001:db8::/48']);
    expect(payload.split('\n')).toEqual([
      '*nat',
      ':CNI-TS-MASQ - [0:0]',
      `-A CNI-TS-MASQ -m comment --comment "cni-install ${digest}" ! -s 2001:db8:1::/64 -j RETURN`,
      '-A CNI-TS-MASQ -d 2001:db8::/48 -j RETURN',
      '-A CNI-TS-MASQ -d ff00::/8 -j RETURN',
      '-A CNI-TS-MASQ -j MASQUERADE',
      'COMMIT',
      '',
    ]);
    expect(iptablesPayload('2001:db8:1::/64', ['2001:db8::/47']).digest).not.toBe(digest);
  });
});

describe('executables', () => {
  function source(files: Record<string, string>, links: Record<string, string> = {}) {
    const src = join(dir, 'src');
    mkdirSync(src, { recursive: true });
    for (const [n, content] of Object.entries(files)) {
      writeFileSync(join(src, n), content);
      chmodSync(join(src, n), 0o755);
    }
    for (const [n, to] of Object.entries(links)) linkSync(join(src, to), join(src, n));
    return src;
  }
  const ino = (p: string) => statSync(p).ino;

  it('copies a multi-call executable once and hard-links its other names; a second run does nothing', async () => {
    const src = source({ cni: 'ELF-one' }, { bridge: 'cni', 'host-local': 'cni', portmap: 'cni' });
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    expect(await installBinaries(src, bin, ['bridge', 'host-local', 'portmap'])).toEqual([
      { name: 'bridge', action: 'copied' },
      { name: 'host-local', action: 'linked' },
      { name: 'portmap', action: 'linked' },
    ]);
    expect(new Set(['bridge', 'host-local', 'portmap'].map((n) => ino(join(bin, n)))).size).toBe(1);
    expect(statSync(join(bin, 'bridge')).mode & 0o777).toBe(0o755);
    expect(await installBinaries(src, bin, ['bridge', 'host-local', 'portmap'])).toEqual([]);
    expect(readdirSync(bin).sort()).toEqual([STAMP, 'bridge', 'host-local', 'portmap']);
  });

  it('trusts its stamp only while source and target are unchanged, and then compares contents', async () => {
    const src = source({ bridge: 'v1-content' });
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    await installBinaries(src, bin, ['bridge']);
    // A touched but identical target: the stamp no longer matches, the hash does, nothing is copied.
    utimesSync(join(bin, 'bridge'), new Date(0), new Date(0));
    expect(await installBinaries(src, bin, ['bridge'])).toEqual([]);
    // A new source of the same size: copied.
    writeFileSync(join(src, 'bridge'), 'v2-content');
    utimesSync(join(src, 'bridge'), new Date(1000), new Date(1000));
    expect(await installBinaries(src, bin, ['bridge'])).toEqual([{ name: 'bridge', action: 'copied' }]);
    expect(readFileSync(join(bin, 'bridge'), 'utf8')).toBe('v2-content');
  });

  it('replaces a different file with a new inode (never writes into the old one) and relinks the other names', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'bridge'), 'old-version');
    linkSync(join(bin, 'bridge'), join(bin, 'portmap'));
    const oldIno = ino(join(bin, 'bridge'));
    const src = source({ cni: 'new-version' }, { bridge: 'cni', portmap: 'cni' });
    expect((await installBinaries(src, bin, ['bridge', 'portmap'])).map((c) => c.action)).toEqual(['copied', 'linked']);
    expect(ino(join(bin, 'bridge'))).not.toBe(oldIno);
    expect(ino(join(bin, 'portmap'))).toBe(ino(join(bin, 'bridge')));
    expect(readFileSync(join(bin, 'portmap'), 'utf8')).toBe('new-version');
  });

  it('keeps same-size files with different content apart (compares the hash, not only the size)', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'bridge'), 'AAAA');
    const src = source({ bridge: 'BBBB', portmap: 'CCCC' });
    expect(await installBinaries(src, bin, ['bridge', 'portmap'])).toEqual([
      { name: 'bridge', action: 'copied' },
      { name: 'portmap', action: 'copied' },
    ]);
    expect(readFileSync(join(bin, 'bridge'), 'utf8')).toBe('BBBB');
  });

  it('fails before touching the bin dir when a source is missing', async () => {
    const src = source({ bridge: 'x' });
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    await expect(installBinaries(src, bin, ['bridge', 'portmap'])).rejects.toThrow(/cannot install portmap/);
    expect(readdirSync(bin)).toEqual([]);
  });
});

/**
 * VLANs on the bridge: access ports, trunk ports, preserveDefaultVlan, and gateway mode with the `<bridge>.<vlan>`
 * gateway veth. They need 802.1Q devices and bridge VLAN filtering; on a kernel without them (this project's CI
 * machines) the same cases run inside a VM booted from Debian's kernel (tests/helpers/vm.ts), and each case here
 * reports the result of its twin in there.
 */
import { canUseNetns, uniqueName, withSandbox, type Sandbox } from '../helpers/netns';
import { kernelHasVlans, runInVm, vmUnavailable, type VmReport } from '../helpers/vm';
import { addrOnly, bridgeConf, call, hostLinks, natState, ping, reservations, withPrev } from './helpers';

/** `ip -j` of one link, or undefined. */
async function link(s: Sandbox, name: string, ns?: string): Promise<any> {
  const r = await s.exec('ip', ['-j', '-d', 'link', 'show', 'dev', name], ns ? { ns } : {});
  return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
}

/** The port's VLANs as `bridge -j vlan show` reports them: vid -> flags. */
async function portVlans(s: Sandbox, port: string): Promise<Record<number, string[]>> {
  const r = await s.exec('bridge', ['-j', 'vlan', 'show', 'dev', port]);
  const out: Record<number, string[]> = {};
  for (const p of JSON.parse(r.stdout || '[]') as Array<{ ifname: string; vlans: Array<{ vlan: number; flags?: string[] }> }>) {
    for (const v of p.vlans) out[v.vlan] = v.flags ?? [];
  }
  return out;
}

const noPing = async (s: Sandbox, ns: string, addr: string) => (await s.exec('busybox', ['ping', '-c', '1', '-W', '1', addr], { ns })).code !== 0;

const cases: Record<string, () => Promise<void>> = {
  'access ports: a filtering bridge, the VLAN as PVID untagged; only containers of one VLAN reach each other': () =>
    withSandbox(async (s) => {
      const bridge = uniqueName('vbr');
      const mk = (vlan: number) => bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { vlan } });
      const [a, b, c] = [await s.container(), await s.container(), await s.container()];
      const ra = await call(s, 'ADD', mk(10), 'va', a);
      const rb = await call(s, 'ADD', mk(10), 'vb', b);
      const rc = await call(s, 'ADD', mk(20), 'vc', c);
      for (const r of [ra, rb, rc]) expect(r.json?.msg).toBeUndefined();
      expect((await link(s, bridge)).linkinfo.info_data.vlan_filtering).toBe(1);
      const vlans = await portVlans(s, ra.json.interfaces[1].name);
      expect(vlans[10]).toEqual(expect.arrayContaining(['PVID', 'Egress Untagged']));
      // preserveDefaultVlan defaults to true: VLAN 1 stays, but is no longer the PVID.
      expect(vlans[1]).toBeDefined();
      expect(vlans[1]).not.toContain('PVID');
      expect(await ping(s, a, addrOnly(rb.json.ips[0].address))).toBe(true);
      expect(await noPing(s, a, addrOnly(rc.json.ips[0].address))).toBe(true);
      expect((await call(s, 'CHECK', withPrev(mk(10), ra.json), 'va', a)).code).toBe(0);
      for (const [r, id, ns, v] of [[ra, 'va', a, 10], [rb, 'vb', b, 10], [rc, 'vc', c, 20]] as const) {
        expect((await call(s, 'DEL', withPrev(mk(v), r.json), id, ns)).code).toBe(0);
      }
      expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
      expect(reservations(s)).toEqual([]);
    }),

  'preserveDefaultVlan false: the port leaves VLAN 1': () =>
    withSandbox(async (s) => {
      const bridge = uniqueName('vbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { vlan: 30, preserveDefaultVlan: false } });
      const a = await s.container();
      const r = await call(s, 'ADD', conf, 'pa', a);
      expect(r.json?.msg).toBeUndefined();
      expect(Object.keys(await portVlans(s, r.json.interfaces[1].name))).toEqual(['30']);
      expect((await call(s, 'DEL', withPrev(conf, r.json), 'pa', a)).code).toBe(0);
    }),

  'trunk port: its VLANs tagged; a VLAN device in the container reaches an access port of that VLAN': () =>
    withSandbox(async (s) => {
      const bridge = uniqueName('vbr');
      const trunk = bridgeConf(s, { bridge, ipam: {}, extra: { vlanTrunk: [{ minID: 5, maxID: 6 }, { id: 9 }] } });
      const access = bridgeConf(s, { bridge, ipam: {}, extra: { vlan: 6 } });
      const [t, a] = [await s.container(), await s.container()];
      const rt = await call(s, 'ADD', trunk, 'tt', t);
      const ra = await call(s, 'ADD', access, 'ta', a);
      for (const r of [rt, ra]) expect(r.json?.msg).toBeUndefined();
      const vlans = await portVlans(s, rt.json.interfaces[1].name);
      for (const v of [5, 6, 9]) expect(vlans[v]).toEqual([]);
      expect(vlans[1]).toEqual(expect.arrayContaining(['PVID']));
      await s.exec('ip', ['link', 'add', 'link', 'eth0', 'name', 'eth0.6', 'type', 'vlan', 'id', '6'], { ns: t });
      await s.exec('ip', ['link', 'set', 'eth0.6', 'up'], { ns: t });
      await s.exec('ip', ['addr', 'add', '203.0.113.1/24', 'dev', 'eth0.6'], { ns: t });
      await s.exec('ip', ['addr', 'add', '203.0.113.2/24', 'dev', 'eth0'], { ns: a });
      expect(await ping(s, t, '203.0.113.2')).toBe(true);
      // VLAN 7 is not on the trunk.
      await s.exec('ip', ['link', 'add', 'link', 'eth0', 'name', 'eth0.7', 'type', 'vlan', 'id', '7'], { ns: t });
      await s.exec('ip', ['link', 'set', 'eth0.7', 'up'], { ns: t });
      await s.exec('ip', ['addr', 'add', '192.0.2.1/24', 'dev', 'eth0.7'], { ns: t });
      await s.exec('ip', ['addr', 'add', '192.0.2.2/24', 'dev', 'eth0'], { ns: a });
      expect(await noPing(s, t, '192.0.2.2')).toBe(true);
      for (const [r, conf, id, ns] of [[rt, trunk, 'tt', t], [ra, access, 'ta', a]] as const) {
        expect((await call(s, 'DEL', withPrev(conf, r.json), id, ns)).code).toBe(0);
      }
    }),

  'vlan + isGateway: the gateway is on <bridge>.<vlan>, an access port of the VLAN; containers reach it and the host beyond it': () =>
    withSandbox(async (s) => {
      const bridge = uniqueName('vb');
      const gw = `${bridge}.40`;
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', v6: '2001:db8:40::/64', extra: { vlan: 40, isDefaultGateway: true, ipMasq: true } });
      const [a, b] = [await s.container(), await s.container()];
      const ra = await call(s, 'ADD', conf, 'ga', a);
      const rb = await call(s, 'ADD', conf, 'gb', b);
      for (const r of [ra, rb]) expect(r.json?.msg).toBeUndefined();
      expect(ra.json.interfaces.map((i: { name: string }) => i.name)).toEqual([bridge, expect.stringMatching(/^veth/), 'eth0', gw]);
      expect(ra.json.interfaces[3].mac).toBe((await link(s, gw)).address);
      const gwAddrs = (await s.exec('ip', ['-o', 'addr', 'show', 'dev', gw])).stdout;
      expect(gwAddrs).toContain('198.51.100.1/24');
      expect(gwAddrs).toContain('2001:db8:40::1/64');
      expect((await s.exec('ip', ['-o', 'addr', 'show', 'dev', bridge])).stdout).not.toContain('198.51.100.1');
      // The gateway veth's bridge end is an access port of VLAN 40.
      const peer = (await link(s, gw)).link as string;
      expect((await link(s, peer)).master).toBe(bridge);
      expect((await portVlans(s, peer))[40]).toEqual(expect.arrayContaining(['PVID', 'Egress Untagged']));
      expect(await ping(s, a, '198.51.100.1')).toBe(true);
      expect(await ping(s, a, '2001:db8:40::1')).toBe(true);
      expect(await ping(s, a, addrOnly(rb.json.ips[0].address))).toBe(true);
      // Beyond the gateway: a host address outside the subnet, reached through the host's routing.
      await s.exec('ip', ['link', 'add', 'up0', 'type', 'dummy']);
      await s.exec('ip', ['link', 'set', 'up0', 'up']);
      await s.exec('ip', ['addr', 'add', '203.0.113.1/24', 'dev', 'up0']);
      expect(await ping(s, a, '203.0.113.1')).toBe(true);
      expect((await call(s, 'CHECK', withPrev(conf, ra.json), 'ga', a)).code).toBe(0);
      // CHECK notices a gateway address that went away.
      await s.exec('ip', ['addr', 'del', '198.51.100.1/24', 'dev', gw]);
      const broken = await call(s, 'CHECK', withPrev(conf, ra.json), 'ga', a);
      expect(broken.code).not.toBe(0);
      expect(broken.json.msg).toContain(`"${gw}" lacks gateway address 198.51.100.1/24`);
      // A later ADD puts it back.
      const c = await s.container();
      const rc = await call(s, 'ADD', conf, 'gc', c);
      expect(rc.json?.msg).toBeUndefined();
      expect(await ping(s, a, '198.51.100.1')).toBe(true);
      for (const [r, id, ns] of [[ra, 'ga', a], [rb, 'gb', b], [rc, 'gc', c]] as const) {
        expect((await call(s, 'DEL', withPrev(conf, r.json), id, ns)).code).toBe(0);
      }
      // The gateway stays (others may share it), as the bridge does; container veths and rules do not.
      const left = await hostLinks(s);
      expect(left).toEqual(expect.arrayContaining([bridge, gw, peer]));
      expect(left.filter((l) => l.startsWith('veth') && l !== peer)).toEqual([]);
      expect(await natState(s)).toEqual([]);
      expect(reservations(s)).toEqual([]);
    }),

  '12 parallel ADDs with vlan + isGateway onto a bridge that does not exist yet: all succeed, one gateway': () =>
    withSandbox(async (s) => {
      const bridge = uniqueName('vb');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { vlan: 50, isGateway: true, preserveDefaultVlan: false } });
      const nss = await Promise.all(Array.from({ length: 12 }, () => s.container()));
      const rs = await Promise.all(nss.map((ns, i) => call(s, 'ADD', conf, `p${i}`, ns)));
      for (const r of rs) expect(r.json?.msg).toBeUndefined();
      const gwMacs = new Set(rs.map((r) => r.json.interfaces[3].mac));
      expect(gwMacs.size).toBe(1);
      const peer = (await link(s, `${bridge}.50`)).link as string;
      expect(Object.keys(await portVlans(s, peer))).toEqual(['50']);
      for (const ns of nss) expect(await ping(s, ns, '198.51.100.1')).toBe(true);
      await Promise.all(rs.map((r, i) => call(s, 'DEL', withPrev(conf, r.json), `p${i}`, nss[i])));
      expect(reservations(s)).toEqual([]);
    }),
};

const canRun = canUseNetns();
const native = canRun && kernelHasVlans();
const whyNot = !canRun ? 'needs root and ip netns' : native ? undefined : vmUnavailable();

if (native || process.env.CNI_TEST_IN_VM) {
  describe('bridge VLANs', () => {
    for (const [name, fn] of Object.entries(cases)) test(name, fn, 180_000);
  });
} else if (!whyNot) {
  describe('bridge VLANs (in a VM with a VLAN-capable kernel)', () => {
    let report: VmReport;
    beforeAll(async () => {
      report = await runInVm(__filename);
    }, 900_000);
    for (const name of Object.keys(cases)) {
      test(name, () => {
        const r = report.tests[name];
        if (r?.status !== 'passed') throw new Error(`in the VM: ${r ? `${r.status}: ${r.failure}` : `not run (${report.summary})`}`);
      });
    }
  });
} else {
  describe.skip(`bridge VLANs (${whyNot})`, () => {
    for (const name of Object.keys(cases)) test(name, () => undefined);
  });
}

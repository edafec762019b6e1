/** Port options that reach the kernel: VLANs, macspoofchk, port isolation, promiscuous mode, forceAddress. */
import { canUseNetns, IS_REFERENCE, uniqueName, withSandbox } from '../helpers/netns';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addrOnly, bridgeConf, call, hostLinks, ping, reservations, withPrev } from './helpers';

const d = canUseNetns() ? describe : describe.skip;

d('bridge port options', () => {
  test('vlan: access port on a vlan-filtering bridge; only same-vlan containers reach each other', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const mk = (vlan: number) => bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { vlan } });
      const [a, b, c] = [await s.container(), await s.container(), await s.container()];
      const probe = await s.exec('ip', ['link', 'add', `${bridge}x`, 'type', 'bridge', 'vlan_filtering', '1']);
      if (probe.code !== 0) {
        // This kernel has no VLAN filtering: ADD must say so and leave no veth or reservation behind.
        const r = await call(s, 'ADD', mk(10), 'va', a);
        expect(r.json?.msg).toMatch(/vlan_filtering 1.*not supported/);
        expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
        expect(reservations(s)).toEqual([]);
        return;
      }
      const ra = await call(s, 'ADD', mk(10), 'va', a);
      const rb = await call(s, 'ADD', mk(10), 'vb', b);
      const rc = await call(s, 'ADD', mk(20), 'vc', c);
      for (const r of [ra, rb, rc]) expect(r.json?.msg).toBeUndefined();
      expect((await s.exec('ip', ['-d', 'link', 'show', bridge])).stdout).toContain('vlan_filtering 1');
      const vlans = (await s.exec('bridge', ['vlan', 'show', 'dev', ra.json.interfaces[1].name])).stdout;
      expect(vlans).toMatch(/10 PVID Egress Untagged/);
      expect(vlans).not.toMatch(/\b1 PVID/);
      expect(await ping(s, a, addrOnly(rb.json.ips[0].address))).toBe(true);
      const cross = await s.exec('busybox', ['ping', '-c', '1', '-W', '1', addrOnly(rc.json.ips[0].address)], { ns: a });
      expect(cross.code).not.toBe(0);
    });
  });

  test('macspoofchk: frames from another MAC are dropped; DEL removes the rules', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { macspoofchk: true, isGateway: true } });
      const [a, b] = [await s.container(), await s.container()];
      const ra = await call(s, 'ADD', conf, 'spa', a);
      const rb = await call(s, 'ADD', conf, 'spb', b);
      expect(ra.json?.msg).toBeUndefined();
      expect(await ping(s, a, addrOnly(rb.json.ips[0].address))).toBe(true);
      const check = await call(s, 'CHECK', withPrev(conf, ra.json), 'spa', a);
      expect(check.code).toBe(0);
      await s.exec('ip', ['link', 'set', 'eth0', 'address', '02:00:00:00:66:66'], { ns: a });
      await s.exec('ip', ['neigh', 'flush', 'all'], { ns: b });
      const spoofed = await s.exec('busybox', ['ping', '-c', '1', '-W', '1', addrOnly(rb.json.ips[0].address)], { ns: a });
      expect(spoofed.code).not.toBe(0);
      expect((await s.exec('nft', ['list', 'table', 'bridge', 'nat'])).stdout).toContain('macspoofchk-spa-eth0');
      const trace = join(s.dir, 'spoof-del-trace');
      for (const [r, id, ns] of [[ra, 'spa', a], [rb, 'spb', b]] as const) expect((await call(s, 'DEL', withPrev(conf, r.json), id, ns, id === 'spa' ? { env: { CNI_TS_TRACE: trace } } : {})).code).toBe(0);
      expect((await s.exec('nft', ['list', 'table', 'bridge', 'nat'])).stdout).not.toContain('macspoofchk');
      // The spoof check's rules are listed and removed by one nft process.
      if (!IS_REFERENCE) expect(readFileSync(trace, 'utf8').split('\n').filter((l) => /^\d+ms (flock .* )?nft /.test(l))).toEqual([expect.stringMatching(/^\d+ms nft -a -i -> 0/)]);
    });
  });

  test('an IPv4-only container sends no IPv6 onto the bridge (IPv6 off on its interface); keepContainerIPv6 keeps the kernel IPv6', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { isGateway: true } });
      const [quiet, chatty] = [await s.container(), await s.container()];
      const rq = await call(s, 'ADD', conf, 'v6q', quiet);
      expect(rq.json?.msg).toBeUndefined();
      expect((await call(s, 'ADD', { ...conf, keepContainerIPv6: true }, 'v6c', chatty)).json?.msg).toBeUndefined();
      // What an interface sends as it comes up (MLD reports at once, a router solicitation within 1 s) is out by then.
      await new Promise((r) => setTimeout(r, 2500));
      // ICMPv6 messages each container's namespace sent (all IPv6 it sends as it comes up is ICMPv6: MLD, RS).
      const sent = async (ns: string) => Number(/Icmp6OutMsgs\s+(\d+)/.exec((await s.exec('cat', ['/proc/net/snmp6'], { ns })).stdout)?.[1] ?? NaN);
      const ifv6 = async (ns: string) => (await s.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'], { ns })).stdout;
      const disabled = async (ns: string) => (await s.exec('cat', ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6'], { ns })).stdout.trim();
      if (!IS_REFERENCE) {
        expect(await sent(quiet)).toBe(0);
        expect(await ifv6(quiet)).toBe('');
        expect(await disabled(quiet)).toBe('1');
      }
      // Keeping IPv6: a link-local address, and what the kernel sends with it (the check above can fail).
      expect(await sent(chatty)).toBeGreaterThan(0);
      expect(await ifv6(chatty)).toMatch(/fe80::/);
      expect(await disabled(chatty)).toBe('0');
      // IPv4 is untouched (CHECK passes, the gateway answers), and the namespace's own IPv6 (loopback) too.
      expect((await call(s, 'CHECK', withPrev(conf, rq.json), 'v6q', quiet)).code).toBe(0);
      expect(await ping(s, quiet, '198.51.100.1')).toBe(true);
      expect((await s.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', 'lo'], { ns: quiet })).stdout).toMatch(/::1/);
    });
  });

  test('portIsolation: isolated ports do not reach each other but reach the gateway', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { portIsolation: true, isGateway: true } });
      const [a, b] = [await s.container(), await s.container()];
      const ra = await call(s, 'ADD', conf, 'pia', a);
      const rb = await call(s, 'ADD', conf, 'pib', b);
      expect(rb.json?.msg).toBeUndefined();
      expect((await s.exec('ip', ['-d', 'link', 'show', ra.json.interfaces[1].name])).stdout).toContain('isolated on');
      expect(await ping(s, a, '198.51.100.1')).toBe(true);
      const r = await s.exec('busybox', ['ping', '-c', '1', '-W', '1', addrOnly(rb.json.ips[0].address)], { ns: a });
      expect(r.code).not.toBe(0);
    });
  });

  test('promiscMode is set on the bridge and CHECK notices when it is turned off', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { promiscMode: true } });
      const ns = await s.container();
      const r = await call(s, 'ADD', conf, 'pm', ns);
      expect((await s.exec('ip', ['link', 'show', bridge])).stdout).toContain('PROMISC');
      expect((await call(s, 'CHECK', withPrev(conf, r.json), 'pm', ns)).code).toBe(0);
      await s.exec('ip', ['link', 'set', bridge, 'promisc', 'off']);
      expect((await call(s, 'CHECK', withPrev(conf, r.json), 'pm', ns)).json?.msg).toMatch(/promiscuous/);
    });
  });

  test('a bridge holding another subnet: error without forceAddress, replaced with it', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      await s.exec('ip', ['link', 'add', bridge, 'type', 'bridge']);
      await s.exec('ip', ['addr', 'add', '203.0.113.1/24', 'dev', bridge]);
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', extra: { isGateway: true } });
      const ns = await s.container();
      const bad = await call(s, 'ADD', conf, 'fa', ns);
      expect(bad.json).toMatchObject({ code: 7, msg: expect.stringContaining('forceAddress') });
      expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
      const ok = await call(s, 'ADD', { ...conf, forceAddress: true }, 'fa', ns);
      expect(ok.json?.msg).toBeUndefined();
      const addrs = (await s.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', bridge])).stdout;
      expect(addrs).toContain('198.51.100.1/24');
      expect(addrs).not.toContain('203.0.113.1');
    });
  });
});

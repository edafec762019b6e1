/** Three containers on one bridge, dual stack, reach each other and the gateway; the result in each version. */
import { canUseNetns, IS_REFERENCE, uniqueName, withSandbox } from '../helpers/netns';
import { addrOnly, bridgeConf, call, HAS_1_1, hostLinks, ping } from './helpers';

const d = canUseNetns() ? describe : describe.skip;

d('bridge connectivity', () => {
  test.each(['0.3.1', '0.4.0', '1.0.0', ...(HAS_1_1 ? ['1.1.0'] : [])])('three dual-stack containers ping each other and the gateway (result %s)', async (version) => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { version, bridge, v4: '198.51.100.0/24', v6: '2001:db8:b1::/64', extra: { isDefaultGateway: true, ipMasq: true } });
      const ctrs: Array<{ ns: string; v4: string; v6: string }> = [];
      for (let i = 0; i < 3; i++) {
        const ns = await s.container();
        const r = await call(s, 'ADD', conf, `ctr${i}`, ns);
        expect(r.json).toBeDefined();
        expect(r.code).toBe(0);
        const res = r.json;
        expect(res.cniVersion).toBe(version);
        expect(res.interfaces).toHaveLength(3);
        expect(res.interfaces[0]).toMatchObject({ name: bridge, mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/) });
        expect(res.interfaces[1].name).toMatch(/^veth[0-9a-f]{8}$/);
        expect(res.interfaces[2]).toMatchObject({ name: 'eth0', sandbox: `/var/run/netns/${ns}` });
        expect(res.ips).toHaveLength(2);
        for (const ip of res.ips) {
          expect(ip.interface).toBe(2);
          if (version < '1.0.0') expect(ip.version).toBe(ip.address.includes(':') ? '6' : '4');
          else expect(ip.version).toBeUndefined();
        }
        expect(res.routes).toEqual(
          expect.arrayContaining([
            { dst: '0.0.0.0/0', gw: '198.51.100.1' },
            { dst: '::/0', gw: '2001:db8:b1::1' },
          ]),
        );
        const v4 = res.ips.find((x: { address: string }) => !x.address.includes(':')).address;
        const v6 = res.ips.find((x: { address: string }) => x.address.includes(':')).address;
        ctrs.push({ ns, v4: addrOnly(v4), v6: addrOnly(v6) });
      }
      expect(await hostLinks(s)).toContain(bridge);
      // Bridge ports carry no IPv6 address of their own (each would cost later ADDs); containers keep theirs.
      const ports = (await s.exec('ip', ['-o', 'link', 'show', 'master', bridge])).stdout.match(/veth[0-9a-f]{8}/g) ?? [];
      expect(ports).toHaveLength(IS_REFERENCE ? ports.length : 3);
      for (const p of ports) if (!IS_REFERENCE) expect((await s.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', p])).stdout).toBe('');
      expect((await s.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'], { ns: ctrs[0]!.ns })).stdout).toMatch(/fe80::/);
      for (const a of ctrs) {
        expect(await ping(s, a.ns, '198.51.100.1')).toBe(true);
        expect(await ping(s, a.ns, '2001:db8:b1::1')).toBe(true);
        for (const b of ctrs) {
          if (a === b) continue;
          expect(await ping(s, a.ns, b.v4)).toBe(true);
          expect(await ping(s, a.ns, b.v6)).toBe(true);
        }
      }
    });
  });

  test('L2-only mode: containers come up without addresses; disableContainerInterface leaves it down', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, ipam: {} });
      const ns = await s.container();
      const r = await call(s, 'ADD', conf, 'l2a', ns);
      expect(r.code).toBe(0);
      expect(r.json.ips).toBeUndefined();
      expect((await s.exec('ip', ['-o', 'link', 'show', 'eth0'], { ns })).stdout).toMatch(/[<,]UP[,>]/);
      const ns2 = await s.container();
      const r2 = await call(s, 'ADD', { ...conf, disableContainerInterface: true }, 'l2b', ns2);
      expect(r2.code).toBe(0);
      expect((await s.exec('ip', ['-o', 'link', 'show', 'eth0'], { ns: ns2 })).stdout).not.toMatch(/[<,]UP[,>]/);
    });
  });

  test('requested MAC, MTU, hairpin and dns override reach the kernel and the result', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, {
        bridge,
        v4: '198.51.100.0/24',
        extra: { mtu: 1400, hairpinMode: true, runtimeConfig: { mac: '02:00:c6:33:64:0a' }, args: { cni: { mac: '02:00:00:00:00:01' } }, dns: { nameservers: ['198.51.100.53'] } },
      });
      const ns = await s.container();
      const r = await call(s, 'ADD', conf, 'opts', ns, { args: 'IgnoreUnknown=1;MAC=02:00:00:00:00:02' });
      expect(r.code).toBe(0);
      expect(r.json.interfaces[2].mac).toBe('02:00:c6:33:64:0a');
      expect(r.json.dns).toEqual({ nameservers: ['198.51.100.53'] });
      const link = (await s.exec('ip', ['-o', 'link', 'show', 'eth0'], { ns })).stdout;
      expect(link).toContain('02:00:c6:33:64:0a');
      expect(link).toContain('mtu 1400');
      const port = (await s.exec('ip', ['-d', 'link', 'show', r.json.interfaces[1].name])).stdout;
      expect(port).toContain('hairpin on');
      expect(port).toContain(`master ${bridge}`);
    });
  });
});

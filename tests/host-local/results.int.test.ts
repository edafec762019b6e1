/** Results: dual stack, every result version (compared with the Go plugin's output), requested addresses, dns. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { GO_DIR, hostLocal, netConf, netDir, reservations } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;
const dual = (dataDir: string, cniVersion: string, extra: Record<string, unknown> = {}) =>
  netConf({
    cniVersion,
    ipam: {
      ranges: [[{ subnet: '192.0.2.0/28', rangeStart: '192.0.2.4' }], [{ subnet: '2001:db8:7::/64', gateway: '2001:db8:7::fe' }]],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '2001:db8:99::/48', gw: '2001:db8:7::fe' }],
      dataDir,
      ...extra,
    },
  });

maybe('host-local results', () => {
  test('dual stack: one IPv4 and one IPv6 address with gateways and routes', async () => {
    await withSandbox(async (s) => {
      const r = await hostLocal(s, { command: 'ADD', conf: dual(s.dir, '1.1.0'), containerID: 'dual' });
      expect(r.code).toBe(0);
      expect(r.json).toEqual({
        cniVersion: '1.1.0',
        ips: [
          { address: '192.0.2.4/28', gateway: '192.0.2.1' },
          { address: '2001:db8:7::1/64', gateway: '2001:db8:7::fe' },
        ],
        routes: [{ dst: '0.0.0.0/0' }, { dst: '2001:db8:99::/48', gw: '2001:db8:7::fe' }],
        dns: {},
      });
      expect(reservations(netDir(s))).toEqual(['192.0.2.4', '2001:db8:7::1']);
    });
  });

  // 0.1.0 and 0.2.0 allow one address per family, which dual stack is.
  test.each(['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'])('result in %s is what the Go plugin prints', async (v) => {
    await withSandbox(async (s) => {
      const ours = await hostLocal(s, { command: 'ADD', conf: dual(join(s.dir, 'ts'), v), containerID: 'ver' });
      const go = await hostLocal(s, { command: 'ADD', conf: dual(join(s.dir, 'go'), v), containerID: 'ver' }, GO_DIR);
      expect(go.code).toBe(0);
      expect(ours.code).toBe(0);
      expect(ours.json).toEqual(go.json);
      expect(ours.json.cniVersion).toBe(v);
    });
  });

  test('0.2.0 refuses two range sets of one family (Go does too)', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ cniVersion: '0.2.0', ipam: { ranges: [[{ subnet: '192.0.2.0/28' }], [{ subnet: '192.0.2.16/28' }]], dataDir: s.dir } });
      const r = await hostLocal(s, { command: 'ADD', conf });
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('ipam.ranges') });
    });
  });

  test('requested addresses from CNI_ARGS, args.cni.ips and runtimeConfig.ips', async () => {
    await withSandbox(async (s) => {
      const base = dual(s.dir, '1.0.0');
      const viaArgs = await hostLocal(s, { command: 'ADD', conf: base, containerID: 'req1', args: 'IgnoreUnknown=1;IP=192.0.2.9' });
      expect(viaArgs.json.ips.map((i: { address: string }) => i.address)).toEqual(['192.0.2.9/28', '2001:db8:7::1/64']);
      const viaCni = await hostLocal(s, { command: 'ADD', conf: { ...base, args: { cni: { ips: ['192.0.2.10', '2001:db8:7::abcd'] } } }, containerID: 'req2' });
      expect(viaCni.json.ips.map((i: { address: string }) => i.address)).toEqual(['192.0.2.10/28', '2001:db8:7::abcd/64']);
      const viaRt = await hostLocal(s, { command: 'ADD', conf: { ...base, runtimeConfig: { ips: ['192.0.2.11/28'] } }, containerID: 'req3' });
      expect(viaRt.json.ips[0].address).toBe('192.0.2.11/28');

      const errors: Array<[Record<string, unknown>, string, string]> = [
        [{ runtimeConfig: { ips: ['2001:db8:7::fe'] } }, 'req4', 'is the gateway'],
        [{ runtimeConfig: { ips: ['198.51.100.7'] } }, 'req5', 'is not in any range'],
        [{ runtimeConfig: { ips: ['192.0.2.2'] } }, 'req6', 'is not in any range'], // below rangeStart
        [{ runtimeConfig: { ips: ['192.0.2.9'] } }, 'req7', 'reserved by req1'],
        [{ runtimeConfig: { ips: ['not-an-ip'] } }, 'req8', 'runtimeConfig.ips[0]'],
      ];
      const before = reservations(netDir(s));
      for (const [extra, containerID, msg] of errors) {
        const r = await hostLocal(s, { command: 'ADD', conf: { ...base, ...extra }, containerID });
        expect(r.code).not.toBe(0);
        expect(r.json.msg).toContain(msg);
      }
      // A failure in the second set releases what the first set reserved.
      const half = await hostLocal(s, { command: 'ADD', conf: { ...base, runtimeConfig: { ips: ['2001:db8:7::abcd'] } }, containerID: 'req9' });
      expect(half.json.msg).toContain('2001:db8:7::abcd');
      expect(reservations(netDir(s))).toEqual(before);
    });
  });

  test('runtimeConfig.ipRanges comes before the configured ranges', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ ipam: { subnet: '192.0.2.0/28', dataDir: s.dir }, extra: { runtimeConfig: { ipRanges: [[{ subnet: '2001:db8:8::/120' }]] } } });
      const r = await hostLocal(s, { command: 'ADD', conf, containerID: 'rng' });
      expect(r.json.ips).toEqual([
        { address: '2001:db8:8::2/120', gateway: '2001:db8:8::1' },
        { address: '192.0.2.2/28', gateway: '192.0.2.1' },
      ]);
      expect(reservations(netDir(s)).sort()).toEqual(['192.0.2.2', '2001:db8:8::2']);
    });
  });

  test('resolvConf is parsed into dns', async () => {
    await withSandbox(async (s) => {
      const rc = join(s.dir, 'resolv.conf');
      writeFileSync(rc, '# comment\nnameserver 192.0.2.53\nnameserver 2001:db8::53\ndomain example.test\nsearch a.example b.example\noptions ndots:2 edns0\n');
      const conf = netConf({ cniVersion: '1.0.0', ipam: { subnet: '192.0.2.0/28', dataDir: join(s.dir, 'ts'), resolvConf: rc } });
      const r = await hostLocal(s, { command: 'ADD', conf, containerID: 'dns' });
      expect(r.json.dns).toEqual({ nameservers: ['192.0.2.53', '2001:db8::53'], domain: 'example.test', search: ['a.example', 'b.example'], options: ['ndots:2', 'edns0'] });
      const go = await hostLocal(s, { command: 'ADD', conf: { ...conf, ipam: { ...(conf.ipam as object), dataDir: join(s.dir, 'go') } }, containerID: 'dns' }, GO_DIR);
      expect(r.json).toEqual(go.json);
    });
  });
});

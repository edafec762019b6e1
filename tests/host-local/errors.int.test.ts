/** Bad input: every config error is code 7 naming the field; hostile names are refused; nothing is written. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { hostLocal, netConf } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;

type Case = [string, Record<string, unknown>, string];
const r = (x: Record<string, unknown>) => ({ ranges: [[{ subnet: '198.51.100.0/24', ...x }]] });
const CASES: Case[] = [
  ['no ranges at all', {}, 'ipam.ranges: no IP ranges'],
  ['subnet not a CIDR', { subnet: '198.51.100.0' }, 'ipam.subnet'],
  ['subnet smaller than /30', { subnet: '198.51.100.0/31' }, 'too small'],
  ['IPv6 subnet smaller than /126', r({ subnet: '2001:db8::/127' }), 'ipam.ranges[0][0].subnet'],
  ['host bits set', r({ subnet: '198.51.100.5/24' }), 'ipam.ranges[0][0].subnet: 198.51.100.5/24 has host bits set'],
  ['rangeStart outside the subnet', r({ rangeStart: '198.51.101.1' }), 'ipam.ranges[0][0].rangeStart: 198.51.101.1 is not in subnet'],
  ['rangeEnd outside the subnet', r({ rangeEnd: '203.0.113.9' }), 'ipam.ranges[0][0].rangeEnd'],
  ['rangeEnd before rangeStart', r({ rangeStart: '198.51.100.50', rangeEnd: '198.51.100.40' }), 'ipam.ranges[0][0].rangeEnd: 198.51.100.40 is before rangeStart'],
  ['gateway not an address', r({ gateway: 'gw' }), 'ipam.ranges[0][0].gateway'],
  ['gateway of the other family', r({ gateway: '2001:db8::1' }), 'ipam.ranges[0][0].gateway'],
  ['empty range set', { ranges: [[]] }, 'ipam.ranges[0]: a range set must hold at least one range'],
  ['ranges not a list of lists', { ranges: [{ subnet: '198.51.100.0/24' }] }, 'ipam.ranges[0]'],
  ['mixed families in a set', { ranges: [[{ subnet: '198.51.100.0/24' }, { subnet: '2001:db8::/64' }]] }, 'ipam.ranges[0][1].subnet'],
  [
    'overlapping ranges in a set',
    { ranges: [[{ subnet: '198.51.100.0/24', rangeEnd: '198.51.100.100' }, { subnet: '198.51.100.0/24', rangeStart: '198.51.100.50' }]] },
    'ipam.ranges[0][1]: range 198.51.100.50-198.51.100.254 overlaps',
  ],
  ['overlapping range sets', { ranges: [[{ subnet: '198.51.100.0/24' }], [{ subnet: '198.51.100.0/25' }]] }, 'ipam.ranges[1]: range set 1 overlaps range set 0'],
  ['legacy subnet overlapping ranges', { subnet: '198.51.100.0/24', ranges: [[{ subnet: '198.51.100.128/25' }]] }, 'overlaps range set 0 (ipam)'],
  ['routes entry without dst', { ...r({}), routes: [{ gw: '198.51.100.1' }] }, 'ipam.routes[0].dst'],
  ['relative dataDir', { ...r({}), dataDir: 'relative/dir' }, 'ipam.dataDir'],
  ['dataDir not a string', { ...r({}), dataDir: 5 }, 'ipam.dataDir'],
  ['reclaimAfterReboot not a boolean', { ...r({}), reclaimAfterReboot: 'yes' }, 'ipam.reclaimAfterReboot'],
  ['resolvConf missing', { ...r({}), resolvConf: '/nonexistent/resolv.conf' }, 'ipam.resolvConf'],
];

maybe('host-local refuses bad input before touching the disk', () => {
  test.each(CASES)('%s: code 7 naming the field', async (_, ipam, msg) => {
    await withSandbox(async (s) => {
      const dataDir = join(s.dir, 'data');
      const conf = netConf({ ipam: { dataDir, ...ipam } });
      const out = await hostLocal(s, { command: 'ADD', conf });
      expect(out.code).not.toBe(0);
      expect(out.json).toMatchObject({ code: 7, msg: expect.stringContaining(msg) });
      expect(out.stdout).not.toMatch(/\n\s+at /);
      expect(readdirSync(s.dir)).toEqual([]);
    });
  });

  test('missing ipam, and bad runtimeConfig.ipRanges, are code 7 naming the field', async () => {
    await withSandbox(async (s) => {
      const none = await hostLocal(s, { command: 'ADD', conf: { cniVersion: '1.1.0', name: 'hlnet', type: 'host-local' } });
      expect(none.json).toMatchObject({ code: 7, msg: expect.stringContaining('ipam') });
      const conf = netConf({ ipam: { dataDir: s.dir, subnet: '198.51.100.0/24' }, extra: { runtimeConfig: { ipRanges: [[{ subnet: '10.0.0.0/33' }]] } } });
      const bad = await hostLocal(s, { command: 'ADD', conf });
      expect(bad.json).toMatchObject({ code: 7, msg: expect.stringContaining('runtimeConfig.ipRanges[0][0].subnet') });
      expect(readdirSync(s.dir)).toEqual([]);
    });
  });

  test.each([
    ['a network name with a slash', { name: '../escape' }, {}, 7],
    ['a network name of dots', { name: '..' }, {}, 7],
    ['a container ID with a path', {}, { containerID: '../../etc/x' }, 4],
    ['a container ID with a newline', {}, { containerID: 'a\r\nb' }, 4],
    ['an ifname with a slash', {}, { ifname: '../x' }, 4],
  ] as const)('%s is refused (code 7 for the network, 4 for the env) and nothing is written', async (_, net, run, code) => {
    await withSandbox(async (s) => {
      const dataDir = join(s.dir, 'data', 'inner');
      const conf = { ...netConf({ ipam: { dataDir, subnet: '198.51.100.0/24' } }), ...net };
      for (const command of ['ADD', 'DEL', 'GC']) {
        const out = await hostLocal(s, { command, conf: { ...conf, cniVersion: '1.1.0' }, ...run });
        if (command === 'GC' && 'containerID' in run) continue; // GC takes no container ID
        if (command === 'GC' && 'ifname' in run) continue;
        expect(out.code).not.toBe(0);
        expect(out.json.code).toBe(code);
      }
      expect(readdirSync(s.dir)).toEqual([]);
    });
  });
});

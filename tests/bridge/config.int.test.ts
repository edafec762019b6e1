/** Every bad input of the config reference is code 7 naming the field, and nothing is created. */
import { canUseNetns, uniqueName, withSandbox } from '../helpers/netns';
import { bridgeConf, call, hostLinks, natState, reservations } from './helpers';

const d = canUseNetns() ? describe : describe.skip;

const BAD: Array<[string, Record<string, unknown>]> = [
  ['bridge', { bridge: '' }],
  ['bridge', { bridge: 'a-name-that-is-too-long' }],
  ['bridge', { bridge: 42 }],
  ['isGateway', { isGateway: 'yes' }],
  ['isDefaultGateway', { isDefaultGateway: 1 }],
  ['forceAddress', { forceAddress: 'true' }],
  ['ipMasq', { ipMasq: 1 }],
  ['ipMasqBackend', { ipMasqBackend: 'ebtables' }],
  ['mtu', { mtu: -1 }],
  ['mtu', { mtu: 70000 }],
  ['mtu', { mtu: '1500' }],
  ['mtu', { mtu: 1500.5 }],
  ['hairpinMode', { hairpinMode: 'on' }],
  ['promiscMode', { promiscMode: 'on' }],
  ['hairpinMode and promiscMode', { hairpinMode: true, promiscMode: true }],
  ['vlan', { vlan: 5000 }],
  ['vlan', { vlan: -1 }],
  ['vlanTrunk', { vlanTrunk: [{ minID: 10 }] }],
  ['vlanTrunk', { vlanTrunk: [{ minID: 20, maxID: 10 }] }],
  ['vlanTrunk', { vlanTrunk: [{ id: 0 }] }],
  ['vlanTrunk', { vlanTrunk: [{ id: 4095 }] }],
  ['vlanTrunk', { vlanTrunk: 'all' }],
  ['preserveDefaultVlan', { preserveDefaultVlan: 'no' }],
  ['enabledad', { enabledad: 'yes' }],
  ['macspoofchk', { macspoofchk: 'yes' }],
  ['disableContainerInterface', { disableContainerInterface: true }],
  ['portIsolation', { portIsolation: 1 }],
  ['runtimeConfig.mac', { runtimeConfig: { mac: 'not-a-mac' } }],
  ['runtimeConfig.mac', { runtimeConfig: { mac: '01:00:5e:00:00:01' } }],
  ['args.cni.mac', { args: { cni: { mac: '02:00:00:00:00' } } }],
  ['ipam.type', { ipam: { type: 'no-such-ipam-plugin' } }],
  ['ipam.type', { ipam: { subnet: '192.0.2.0/24' } }],
  ['dns.nameservers', { dns: { nameservers: '192.0.2.53' } }],
  ['name', { name: 'bad name' }],
];

d('bridge config errors', () => {
  test('each bad input: code 7 naming the field, nothing created', async () => {
    await withSandbox(async (s) => {
      const ns = await s.container();
      const bridge = uniqueName('cbr');
      const linksBefore = await hostLinks(s);
      const ctrBefore = (await s.exec('ip', ['-o', 'link', 'show'], { ns })).stdout;
      for (const [field, bad] of BAD) {
        const base = bridgeConf(s, { bridge, v4: '192.0.2.0/24', extra: { ipMasq: true } });
        const conf = { ...base, ...bad };
        if ('disableContainerInterface' in bad) expect(conf.ipam).toBeDefined();
        const r = await call(s, 'ADD', conf, 'badcfg', ns);
        expect({ field, code: r.code === 0 ? 0 : r.json?.code }).toEqual({ field, code: 7 });
        expect(r.json.msg).toContain(field.split(' ')[0]!.split('.')[0]);
      }
      expect(await hostLinks(s)).toEqual(linksBefore);
      expect((await s.exec('ip', ['-o', 'link', 'show'], { ns })).stdout).toEqual(ctrBefore);
      expect(await natState(s)).toEqual([]);
      expect(reservations(s)).toEqual([]);
    });
  });

  test('a bad IPAM config is IPAM\'s code 7; nothing is left, whether the bridge is new or already there', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const bad = { ...bridgeConf(s, { bridge, v4: '192.0.2.0/24' }), ipam: { type: 'host-local', dataDir: `${s.dir}/ipam-data`, ranges: [[{ subnet: 'nonsense' }]] } };
      const ns = await s.container();
      const before = await hostLinks(s);
      const r1 = await call(s, 'ADD', bad, 'ipambad', ns);
      expect(r1.json).toMatchObject({ code: 7, msg: expect.stringContaining('subnet') });
      expect(await hostLinks(s)).toEqual(before);
      const good = await call(s, 'ADD', bridgeConf(s, { bridge, v4: '192.0.2.0/24' }), 'ipamgood', await s.container());
      expect(good.code).toBe(0);
      const during = await hostLinks(s);
      const r2 = await call(s, 'ADD', bad, 'ipambad', ns);
      expect(r2.json).toMatchObject({ code: 7 });
      expect(await hostLinks(s)).toEqual(during);
      expect((await s.exec('ip', ['-o', 'link', 'show'], { ns })).stdout).not.toContain('eth0');
    });
  });

  test('a bridge name taken by a device that is not a bridge: code 7, nothing created', async () => {
    await withSandbox(async (s) => {
      const ns = await s.container();
      const name = uniqueName('cdm');
      await s.exec('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
      const before = await hostLinks(s);
      const r = await call(s, 'ADD', bridgeConf(s, { bridge: name, v4: '192.0.2.0/24' }), 'notbr', ns);
      expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining(`"${name}" already exists and is not a bridge`) });
      expect(await hostLinks(s)).toEqual(before);
      expect(reservations(s)).toEqual([]);
    });
  });

  test('an interface name already taken in the container: error naming CNI_IFNAME, no veth or reservation left', async () => {
    await withSandbox(async (s) => {
      const ns = await s.container();
      await s.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'], { ns });
      const bridge = uniqueName('cbr');
      const r = await call(s, 'ADD', bridgeConf(s, { bridge, v4: '192.0.2.0/24', extra: { ipMasq: true } }), 'taken', ns);
      expect(r.json).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_IFNAME "eth0" already exists') });
      expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
      expect(reservations(s)).toEqual([]);
      expect(await natState(s)).toEqual([]);
    });
  });
});

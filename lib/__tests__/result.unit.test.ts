import { convertResult, formatResult, parseResult } from '../types/result';
import { CniError } from '../errors';

// The spec's example result (SPEC.md 1.1.0, "ADD Success").
const spec110 = {
  cniVersion: '1.1.0',
  interfaces: [
    { name: 'cni0', mac: '00:11:22:33:44:55' },
    { name: 'veth3243', mac: '55:44:33:22:11:11' },
    { name: 'eth0', mac: '99:88:77:66:55:44', sandbox: '/var/run/netns/blue' },
  ],
  ips: [
    { address: '10.1.0.5/16', gateway: '10.1.0.1', interface: 2 },
    { address: '2001:db8::5/64', gateway: '2001:db8::1', interface: 2 },
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: '2001:db8::1' }],
  dns: { nameservers: ['10.1.0.1'] },
};

// The 0.2.0 example (SPEC.md 0.2.0).
const spec020 = {
  cniVersion: '0.2.0',
  ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] },
  ip6: { ip: '2001:db8::5/64', gateway: '2001:db8::1', routes: [{ dst: '::/0', gw: '2001:db8::1' }] },
  dns: { nameservers: ['10.1.0.1'] },
};

describe('result conversion', () => {
  test('1.1.0 round-trips unchanged', () => {
    expect(convertResult(spec110, '1.1.0', '1.1.0')).toEqual(spec110);
  });

  test.each(['0.3.0', '0.3.1', '0.4.0'])('%s adds version to each IP and round-trips back', (v) => {
    const down = convertResult(spec110, '1.1.0', v) as any;
    expect(down.cniVersion).toBe(v);
    expect(down.ips.map((i: any) => i.version)).toEqual(['4', '6']);
    expect(down.interfaces).toEqual(spec110.interfaces);
    expect(convertResult(down, v, '1.1.0')).toEqual(spec110);
  });

  test('1.0.0 drops 1.1-only fields', () => {
    const r = { ...spec110, routes: [{ dst: '0.0.0.0/0', mtu: 1400, table: 100 }] };
    const out = convertResult(r, '1.1.0', '1.0.0') as any;
    expect(out.routes).toEqual([{ dst: '0.0.0.0/0' }]);
    expect(out.ips[0].version).toBeUndefined();
  });

  test('0.2.0 example converts up and back', () => {
    const up = convertResult(spec020, '0.2.0', '1.1.0') as any;
    expect(up.ips).toEqual([
      { address: '10.1.0.5/16', gateway: '10.1.0.1' },
      { address: '2001:db8::5/64', gateway: '2001:db8::1' },
    ]);
    expect(up.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: '2001:db8::1' }]);
    expect(convertResult(up, '1.1.0', '0.2.0')).toEqual(spec020);
  });

  test('1.1.0 down to 0.1.0 keeps the first address of each family and its routes', () => {
    const out = convertResult(spec110, '1.1.0', '0.1.0') as any;
    expect(out).toEqual({ ...spec020, cniVersion: '0.1.0', ip4: { ip: '10.1.0.5/16', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0' }] } });
  });

  test('empty dns is printed as an object, as the Go types do', () => {
    expect(formatResult({ ips: [{ address: '192.0.2.2/24' }] }, '1.0.0')).toEqual({ cniVersion: '1.0.0', ips: [{ address: '192.0.2.2/24' }], dns: {} });
  });

  test('a bad address is a config error naming the field', () => {
    expect(() => parseResult({ cniVersion: '1.0.0', ips: [{ address: '10.1.0.500/16' }] }, '1.0.0')).toThrow(/prevResult\.ips\[0\]\.address/);
    try {
      parseResult({ cniVersion: '1.0.0', ips: [{ address: 'x' }] }, '1.0.0');
    } catch (e) {
      expect((e as CniError).code).toBe(7);
    }
  });

  test('an interface index past the list is an error', () => {
    expect(() => parseResult({ cniVersion: '1.0.0', interfaces: [], ips: [{ address: '192.0.2.2/24', interface: 0 }] }, '1.0.0')).toThrow(/interface: index 0/);
  });

  test('prevResult without cniVersion takes the request version', () => {
    expect(parseResult({ ip4: { ip: '192.0.2.2/24' } }, '0.2.0').ips).toEqual([{ address: '192.0.2.2/24' }]);
  });
});

/** The suite's own checkers must reject what the spec forbids, or the suite certifies anything. */
import { mentions } from './env';
import { checkResult, type Expect } from './shape';

const NS = '/var/run/netns/c1';
const iface = (extra = {}) => ({ cniVersion: '1.0.0', interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: NS, mac: '02:00:00:00:00:01' }], ips: [{ address: '198.51.100.2/24', gateway: '198.51.100.1', interface: 1 }], ...extra });
const e = (o: Partial<Expect> = {}): Expect => ({ version: '1.0.0', kind: 'interface', netns: NS, ifname: 'eth0', families: [4], ...o });

describe('checkResult', () => {
  test('accepts a 1.0.0 interface result and finds the container interface', () => {
    expect(checkResult(iface(), e()).sandboxIface?.name).toBe('eth0');
  });
  test.each([
    ['cniVersion differs', iface({ cniVersion: '0.4.0' }), e(), /cniVersion/],
    ['version key in 1.0.0', iface({ ips: [{ address: '198.51.100.2/24', version: '4', interface: 1 }] }), e(), /no version field/],
    ['interface index past the list', iface({ ips: [{ address: '198.51.100.2/24', interface: 2 }] }), e(), /not an index/],
    ['ip on the host interface', iface({ ips: [{ address: '198.51.100.2/24', interface: 0 }] }), e(), /not the container interface/],
    ['no sandbox interface', iface({ interfaces: [{ name: 'eth0' }] }), e(), /no eth0 with sandbox/],
    ['bad CIDR', iface({ ips: [{ address: '198.51.100.2', interface: 1 }] }), e(), /CIDR/],
    ['missing family', iface(), e({ families: [4, 6] }), /no IPv6/],
    ['bad mac', iface({ interfaces: [{ name: 'cni0' }, { name: 'eth0', sandbox: NS, mac: 'zz' }] }), e(), /not a MAC/],
  ])('rejects: %s', (_n, res, exp, msg) => {
    expect(() => checkResult(res, exp)).toThrow(msg);
  });
  test('0.3.x/0.4.0 need version on each IP, matching the family', () => {
    const r = { cniVersion: '0.4.0', interfaces: [{ name: 'eth0', sandbox: NS }], ips: [{ address: '198.51.100.2/24', interface: 0 }] };
    expect(() => checkResult(r, e({ version: '0.4.0' }))).toThrow(/version/);
    expect(() => checkResult({ ...r, ips: [{ ...r.ips[0], version: '6' }] }, e({ version: '0.4.0' }))).toThrow(/version/);
    expect(checkResult({ ...r, ips: [{ ...r.ips[0], version: '4' }] }, e({ version: '0.4.0' })).ips).toHaveLength(1);
  });
  test('IPAM results have no interfaces and no ips[].interface', () => {
    const ipam = e({ kind: 'ipam' });
    expect(checkResult({ cniVersion: '1.0.0', ips: [{ address: '192.0.2.2/24' }] }, ipam).ips).toHaveLength(1);
    expect(() => checkResult({ cniVersion: '1.0.0', ips: [{ address: '192.0.2.2/24', interface: 0 }] }, ipam)).toThrow(/IPAM/);
    expect(() => checkResult({ cniVersion: '1.0.0', interfaces: [], ips: [{ address: '192.0.2.2/24' }] }, ipam)).toThrow(/IPAM/);
  });
  test('0.2.0 results are ip4/ip6 only', () => {
    const ipam = e({ kind: 'ipam', version: '0.2.0', families: [4, 6] });
    expect(checkResult({ cniVersion: '0.2.0', ip4: { ip: '192.0.2.2/24' }, ip6: { ip: '2001:db8::2/64' } }, ipam).ips).toHaveLength(2);
    expect(() => checkResult({ cniVersion: '0.2.0', ip4: { ip: '192.0.2.2/24' } }, ipam)).toThrow(/ip6 is missing/);
    expect(() => checkResult({ cniVersion: '0.2.0', ip4: { ip: '2001:db8::2/64' }, ip6: { ip: '2001:db8::3/64' } }, ipam)).toThrow(/not IPv4/);
    expect(() => checkResult({ cniVersion: '0.2.0', ips: [], ip4: { ip: '192.0.2.2/24' }, ip6: { ip: '2001:db8::2/64' } }, ipam)).toThrow(/not ips/);
  });
});

describe('mentions', () => {
  const dump = ['-A POSTROUTING -s 198.51.100.5/32 -j CNI-x', '-A X -s 198.51.100.50/32', '--comment "id: \\"conf-ab\\""', '--comment "id: \\"conf-abc\\""'].join('\n');
  test('matches whole addresses and IDs only', () => {
    expect(mentions(dump, ['198.51.100.5'])).toEqual(['-A POSTROUTING -s 198.51.100.5/32 -j CNI-x']);
    expect(mentions(dump, ['conf-ab'])).toHaveLength(1);
    expect(mentions(dump, ['198.51.100.7'])).toEqual([]);
  });
});

import fc from 'fast-check';
import { IPv4, IPv6 } from 'ip-num';
import { contains, formatIp, hasHostBits, lastOf, networkOf, parseCidr, parseIp } from '../ip';

describe('address parsing and formatting', () => {
  test.each([
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::', '::'],
    ['1::', '1::'],
    ['fe80::1:2', 'fe80::1:2'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['192.0.2.255', '192.0.2.255'],
  ])('%s formats as %s (Go net.IP.String)', (text, want) => {
    expect(formatIp(parseIp(text)!)).toBe(want);
  });

  test.each(['256.1.1.1', '01.2.3.4', '1.2.3', '1::2::3', '1:2:3:4:5:6:7:8:9', '', 'abc', '1.2.3.4/24', ':::', 'fe80::1%eth0'])('%s is rejected', (t) => {
    expect(parseIp(t)).toBeNull();
  });

  test('agrees with ip-num on random IPv4 and IPv6 values', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), (v) => {
        const text = new IPv4(v).toString();
        expect(parseIp(text)).toEqual({ family: 4, value: v });
      }),
      { seed: 42, numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
        const ours = parseIp(formatIp({ family: 6, value: v }));
        // ip-num parses our canonical text back to the same value (IPv4-mapped excepted: we print dotted form).
        if (ours!.family === 6) expect(IPv6.fromString(formatIp(ours!)).value).toBe(v);
        expect(ours!.value).toBe(ours!.family === 4 ? v & 0xffffffffn : v);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  test('cidr math', () => {
    const c = parseCidr('10.1.2.3/16')!;
    expect(formatIp(networkOf(c))).toBe('10.1.0.0');
    expect(formatIp(lastOf(c))).toBe('10.1.255.255');
    expect(hasHostBits(c)).toBe(true);
    expect(contains(c, parseIp('10.1.200.1')!)).toBe(true);
    expect(contains(c, parseIp('10.2.0.1')!)).toBe(false);
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(formatIp(lastOf(parseCidr('2001:db8::/64')!))).toBe('2001:db8::ffff:ffff:ffff:ffff');
  });
});

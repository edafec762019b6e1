/** Pure logic of host-local: range defaults and validation, round-robin order, requested-address assignment. */
import fc from 'fast-check';
import { CniError } from '../../lib/errors';
import { formatIp, parseIp, type Addr } from '../../lib/ip';
import { loadConfig, requestedIps } from '../../ipam/host-local/config';
import { parseResolvConf } from '../../ipam/host-local/dns';
import { assignRequested, candidates, countReserved, freeCandidates, namesInSet } from '../../ipam/host-local/plan';
import { canonicalizeRange, capacity, rangeSetText, type RangeSet } from '../../ipam/host-local/range';
import { addrOfName, isReservationName } from '../../ipam/host-local/store';

const ip = (t: string): Addr => parseIp(t)!;
const set = (...ranges: Array<Record<string, string>>): RangeSet => ranges.map((r, i) => canonicalizeRange(r, `r${i}`));
const walk = (s: RangeSet, last?: string) => [...candidates(s, last ? ip(last) : undefined)].map((c) => formatIp(c.addr));

function codeOf(f: () => unknown): { code: number; msg: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof CniError) return { code: e.code, msg: e.message };
    throw e;
  }
  throw new Error('did not throw');
}

describe('range defaults (as the Go plugin)', () => {
  test('IPv4: gateway and start are .1, end is broadcast-1', () => {
    const [r] = set({ subnet: '192.0.2.0/24' });
    expect(rangeSetText([r!])).toBe('192.0.2.1-192.0.2.254');
    expect(formatIp(r!.gateway)).toBe('192.0.2.1');
  });
  test('IPv6: the end is the last address', () => {
    expect(rangeSetText(set({ subnet: '2001:db8::/120' }))).toBe('2001:db8::1-2001:db8::ff');
  });
  test('the smallest subnets are /30 and /126', () => {
    expect(rangeSetText(set({ subnet: '192.0.2.0/30' }))).toBe('192.0.2.1-192.0.2.2');
    expect(codeOf(() => set({ subnet: '192.0.2.0/31' })).code).toBe(7);
    expect(rangeSetText(set({ subnet: '2001:db8::/126' }))).toBe('2001:db8::1-2001:db8::3');
    expect(codeOf(() => set({ subnet: '2001:db8::/127' })).msg).toContain('too small');
  });
  test('"" counts as absent, as Go decodes it', () => {
    expect(rangeSetText(set({ subnet: '192.0.2.0/29', rangeStart: '', rangeEnd: '', gateway: '' }))).toBe('192.0.2.1-192.0.2.6');
  });
  test('IPv4-mapped addresses are IPv4', () => {
    expect(rangeSetText(set({ subnet: '192.0.2.0/24', rangeStart: '::ffff:192.0.2.10' }))).toBe('192.0.2.10-192.0.2.254');
  });
  test('capacity leaves the gateway out only when it lies in the range', () => {
    expect(capacity(set({ subnet: '192.0.2.0/29' }))).toBe(5n);
    expect(capacity(set({ subnet: '192.0.2.0/29', rangeStart: '192.0.2.3' }))).toBe(4n);
    expect(capacity(set({ subnet: '2001:db8::/64' }))).toBe((1n << 64n) - 2n);
  });
});

describe('round-robin order', () => {
  const s = set({ subnet: '192.0.2.0/29' }, { subnet: '192.0.2.16/30' });
  test('from the first range start, gateways skipped, every address once', () => {
    expect(walk(s)).toEqual(['192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6', '192.0.2.18']);
  });
  test('after last_reserved, wrapping through the next ranges back to it', () => {
    expect(walk(s, '192.0.2.4')).toEqual(['192.0.2.5', '192.0.2.6', '192.0.2.18', '192.0.2.2', '192.0.2.3', '192.0.2.4']);
    expect(walk(s, '192.0.2.6')).toEqual(['192.0.2.18', '192.0.2.2', '192.0.2.3', '192.0.2.4', '192.0.2.5', '192.0.2.6']);
  });
  test('a last_reserved outside the set starts over', () => {
    expect(walk(s, '198.51.100.1')[0]).toBe('192.0.2.2');
  });
  test('free candidates skip taken names without touching anything else', () => {
    const taken = new Set(['192.0.2.5', '192.0.2.6', '192.0.2.18']);
    expect([...freeCandidates(s, ip('192.0.2.4'), taken)].map((c) => c.name)).toEqual(['192.0.2.2', '192.0.2.3', '192.0.2.4']);
  });
  test('a huge IPv6 range yields its first free address at once', () => {
    const big = set({ subnet: '2001:db8::/64' });
    const first = freeCandidates(big, undefined, new Set(['2001:db8::2'])).next().value;
    expect(first?.name).toBe('2001:db8::3');
  });
  test('property: the walk visits every allocatable address exactly once, from any last_reserved', () => {
    fc.assert(
      fc.property(fc.integer({ min: 26, max: 30 }), fc.integer({ min: 0, max: 255 }), (prefix, lastOctet) => {
        const one = set({ subnet: `192.0.2.0/${prefix}` });
        const seen = walk(one, `192.0.2.${lastOctet}`);
        expect(new Set(seen).size).toBe(seen.length);
        expect(BigInt(seen.length)).toBe(capacity(one));
        expect(seen).not.toContain('192.0.2.1');
      }),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('requested addresses', () => {
  const sets = [set({ subnet: '192.0.2.0/24', rangeStart: '192.0.2.10' }), set({ subnet: '2001:db8::/64' })];
  const req = (t: string, from = 'test') => ({ addr: ip(t), from });
  test('each goes to the set that contains it', () => {
    const m = assignRequested(sets, [req('2001:db8::5'), req('192.0.2.20')]);
    expect(formatIp(m.get(0)!.addr)).toBe('192.0.2.20');
    expect(formatIp(m.get(1)!.addr)).toBe('2001:db8::5');
  });
  test.each([
    [['192.0.2.5'], 'is not in any range'],
    [['2001:db8::1'], 'is the gateway'],
    [['192.0.2.20', '192.0.2.21'], 'one address per range set'],
  ])('%j is refused (%s)', (texts, msg) => {
    expect(codeOf(() => assignRequested(sets, texts.map((t) => req(t))))).toMatchObject({ code: 7, msg: expect.stringContaining(msg) });
  });
  test('the same address from two sources is one request', () => {
    expect(assignRequested(sets, [req('192.0.2.20', 'a'), req('192.0.2.20', 'b')]).size).toBe(1);
  });
  test('CNI_ARGS IP, args.cni.ips and runtimeConfig.ips are read in that order; prefixes are accepted', () => {
    const raw = { args: { cni: { ips: ['192.0.2.30/24'] } }, runtimeConfig: { ips: ['2001:db8::9'] } };
    const out = requestedIps(raw, new Map([['IP', '192.0.2.40']]));
    expect(out.map((r) => [formatIp(r.addr), r.from])).toEqual([
      ['192.0.2.40', 'CNI_ARGS IP'],
      ['192.0.2.30', 'args.cni.ips[0]'],
      ['2001:db8::9', 'runtimeConfig.ips[0]'],
    ]);
  });
  test('unknown CNI_ARGS keys are code 4 unless IgnoreUnknown', () => {
    expect(codeOf(() => requestedIps({}, new Map([['FOO', '1']]))).code).toBe(4);
    expect(requestedIps({}, new Map([['FOO', '1'], ['IgnoreUnknown', '1']]))).toEqual([]);
  });
});

describe('config assembly', () => {
  test('range sets are ordered runtimeConfig.ipRanges, legacy subnet, ranges (last_reserved_ip.N follows it)', () => {
    const cfg = loadConfig(
      { ipam: { subnet: '192.0.2.0/24', ranges: [[{ subnet: '2001:db8::/64' }]] }, runtimeConfig: { ipRanges: [[{ subnet: '198.51.100.0/24' }]] } },
      'n',
      '1.0.0',
    );
    expect(cfg.sets.map(rangeSetText)).toEqual(['198.51.100.1-198.51.100.254', '192.0.2.1-192.0.2.254', '2001:db8::1-2001:db8::ffff:ffff:ffff:ffff']);
    expect(cfg.dataDir).toBe('/var/lib/cni/networks');
  });
});

describe('ownership', () => {
  const s = set({ subnet: '192.0.2.0/24' });
  const names = ['192.0.2.2', '192.0.2.3', '198.51.100.2', 'lock'];
  test('an attachment holds an address in a set when the address lies in one of its ranges', () => {
    expect(namesInSet(s, names)).toEqual(['192.0.2.2', '192.0.2.3']);
    expect(namesInSet(set({ subnet: '198.51.100.0/24' }), names)).toEqual(['198.51.100.2']);
  });
  test('reserved count ignores addresses outside the set', () => {
    expect(countReserved(s, names.slice(0, 3).map(ip))).toBe(2n);
  });
  test('only canonical address names are reservation files', () => {
    expect(addrOfName('192.0.2.5')).toEqual(ip('192.0.2.5'));
    expect(addrOfName('2001:db8::5')).toEqual(ip('2001:db8::5'));
    for (const n of ['lock', 'last_reserved_ip.0', 'boot_id', '2001:DB8::5', '2001:db8:0::5']) expect(addrOfName(n)).toBeUndefined();
  });
  test('isReservationName answers as addrOfName does, on names of every kind', () => {
    const names = ['192.0.2.5', '0.0.0.0', '255.255.255.255', '192.0.2.05', '192.0.2.256', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '2001:db8::5', '::ffff:192.0.2.1', '::ffff:c000:201', '2001:DB8::5', 'lock', 'last_reserved_ip.0', '.host-local-owners', 'boot_id', ''];
    for (let i = 0; i < 2000; i++) names.push([0, 1, 2, 3].map(() => Math.floor(Math.random() * 300)).join('.'));
    for (const n of names) expect([n, isReservationName(n)]).toEqual([n, addrOfName(n) !== undefined]);
  });
});

describe('resolv.conf', () => {
  test('nameserver, domain, search, options; comments and short lines skipped', () => {
    expect(parseResolvConf('; c\n# c\nnameserver 192.0.2.53\nnameserver\ndomain d.test\nsearch a b\r\noptions x:1\n')).toEqual({
      nameservers: ['192.0.2.53'],
      domain: 'd.test',
      search: ['a', 'b'],
      options: ['x:1'],
    });
  });
});

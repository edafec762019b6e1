/** Pure planning: the exact iptables-restore and nft text for given mappings, config validation, address choice. */
import { createHash } from 'node:crypto';
import type { HostportRequest } from '../../lib/firewall/driver';
import * as ipt from '../../lib/firewall/iptables/hostport-rules';
import * as nft from '../../lib/firewall/nftables/hostport-rules';
import { CniError } from '../../lib/errors';
import { parseConfig } from '../../plugins/portmap/config';
import { routeInterface } from '../../plugins/portmap/localnet';
import { containerAddresses, udpFlushes } from '../../plugins/portmap/plan';

const req = (over: Partial<HostportRequest> = {}): HostportRequest => ({
  network: 'net1',
  containerID: 'ctr1',
  ifname: 'eth0',
  addresses: ['192.0.2.5/24', '2001:db8::5/64'],
  snat: true,
  masqAll: false,
  markMasqBit: 13,
  mappings: [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 53, containerPort: 5353, protocol: 'udp', hostIP: '198.51.100.1' },
  ],
  ...over,
});
const CHAIN = 'CNI-DN-85373d34c6846b6c53ee2';
const COMMENT = '-m comment --comment "dnat name: \\"net1\\" id: \\"ctr1\\""';

describe('iptables planning', () => {
  test('chain name is CNI-DN- + the first 21 hex of sha512(network + containerID), as the Go plugin names it', () => {
    expect(ipt.dnatChainName('net1', 'ctr1')).toBe(`CNI-DN-${createHash('sha512').update('net1ctr1').digest('hex').slice(0, 21)}`);
    expect(ipt.dnatChainName('net1', 'ctr1')).toBe(CHAIN);
    expect(CHAIN).toHaveLength(28);
  });

  test('ADD for IPv4: recreates the container chain, marks hairpin and localhost, DNATs, jumps by multiport; no -C (it reads the whole table)', () => {
    const r = req();
    expect(ipt.addPayload(r, 4, ipt.containerCidr(r, 4)!)).toBe(
      [
        '*nat',
        `:${CHAIN} - [0:0]`,
        `-A ${CHAIN} -p tcp --dport 8080 -s 192.0.2.0/24 -j CNI-HOSTPORT-SETMARK`,
        `-A ${CHAIN} -p tcp --dport 8080 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK`,
        `-A ${CHAIN} -p tcp --dport 8080 -j DNAT --to-destination 192.0.2.5:80`,
        `-A ${CHAIN} -p udp --dport 53 -d 198.51.100.1 -s 192.0.2.0/24 -j CNI-HOSTPORT-SETMARK`,
        `-A ${CHAIN} -p udp --dport 53 -d 198.51.100.1 -s 127.0.0.1 -j CNI-HOSTPORT-SETMARK`,
        `-A ${CHAIN} -p udp --dport 53 -d 198.51.100.1 -j DNAT --to-destination 192.0.2.5:5353`,
        `-A CNI-HOSTPORT-DNAT ${COMMENT} -m multiport -p tcp --destination-ports 8080 -j ${CHAIN}`,
        `-A CNI-HOSTPORT-DNAT ${COMMENT} -m multiport -p udp --destination-ports 53 -j ${CHAIN}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test('ADD for IPv6: no localhost rule, bracketed destination, the IPv4 hostIP mapping skipped (its port still in the jump)', () => {
    const r = req();
    const text = ipt.addPayload(r, 6, ipt.containerCidr(r, 6)!);
    expect(text).toContain(`-A ${CHAIN} -p tcp --dport 8080 -s 2001:db8::/64 -j CNI-HOSTPORT-SETMARK\n-A ${CHAIN} -p tcp --dport 8080 -j DNAT --to-destination [2001:db8::5]:80\n-A CNI-HOSTPORT-DNAT`);
    expect(text).not.toContain('127.0.0.1');
    expect(text).not.toContain('198.51.100.1');
    expect(text).toContain(`--destination-ports 53 -j ${CHAIN}`);
  });

  test('DEL deletes exactly the jumps, then flushes and removes the chain', () => {
    expect(ipt.delPayload(req(), 4)).toBe(
      [
        '*nat',
        `-D CNI-HOSTPORT-DNAT ${COMMENT} -m multiport -p tcp --destination-ports 8080 -j ${CHAIN}`,
        `-D CNI-HOSTPORT-DNAT ${COMMENT} -m multiport -p udp --destination-ports 53 -j ${CHAIN}`,
        `-F ${CHAIN}`,
        `-X ${CHAIN}`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test('multiport lists hold at most 15 ports; conditions follow them; masqAll marks every source; external mark chain', () => {
    const mappings = Array.from({ length: 16 }, (_, i) => ({ hostPort: 1000 + i, containerPort: 80, protocol: 'tcp' as const }));
    const r = req({ mappings, conditionsV4: ['-s', '10.0.0.0/8'], masqAll: true, externalSetMarkChain: 'KUBE-MARK-MASQ' });
    const jumps = ipt.entryRules(r, 4).map((e) => e.args.join(' '));
    expect(jumps).toHaveLength(2);
    expect(jumps[0]).toContain(`--destination-ports ${mappings.slice(0, 15).map((m) => m.hostPort).join(',')} -s 10.0.0.0/8 -j ${CHAIN}`);
    expect(jumps[1]).toContain('--destination-ports 1015 -s 10.0.0.0/8');
    const rules = ipt.containerRules(r, 4, ipt.containerCidr(r, 4)!).map((x) => x.args.join(' '));
    expect(rules.slice(0, 2)).toEqual(['-p tcp --dport 1000 -s 0.0.0.0/0 -j KUBE-MARK-MASQ', '-p tcp --dport 1000 -j DNAT --to-destination 192.0.2.5:80']);
    expect(ipt.sharedRules(r).map((s) => s.chain)).toEqual(['PREROUTING', 'OUTPUT']);
  });

  test('snat false: no mark rules and no shared masquerade chains', () => {
    const r = req({ snat: false });
    expect(ipt.containerRules(r, 4, ipt.containerCidr(r, 4)!).every((x) => x.args.includes('DNAT'))).toBe(true);
    expect(ipt.sharedChains(r)).toEqual(['CNI-HOSTPORT-DNAT']);
  });

  test('GC reads network, container ID and chain back from the listed jumps', () => {
    const listing = [
      '-N CNI-HOSTPORT-DNAT',
      `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"net1\\" id: \\"ctr1\\"" -m multiport --dports 8080 -j ${CHAIN}`,
      '-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "something else" -j CNI-DN-0',
    ].join('\n');
    expect(ipt.parseJumps(listing)).toEqual([{ line: listing.split('\n')[1], network: 'net1', containerID: 'ctr1', chain: CHAIN }]);
    expect(ipt.delListedPayload([listing.split('\n')[1]!], [CHAIN])).toContain(`-D CNI-HOSTPORT-DNAT -p tcp -m comment`);
  });
});

describe('nftables planning', () => {
  const DN = 'dn-85373d34c6846b6c53ee2';
  test('ADD: the skeleton, the container chain with named rules per family, and map elements owned by the attachment', () => {
    const text = nft.addScript(req());
    expect(text).toContain('add rule inet cni_portmap hostports meta l4proto . th dport vmap @ports\n');
    expect(text).toContain('add rule inet cni_portmap masq-13 meta mark & 0x2000 == 0x2000 masquerade\n');
    expect(text).toContain('add rule inet cni_portmap setmark-13 meta mark set meta mark | 0x2000\n');
    const tail = text.slice(text.indexOf(`add chain inet cni_portmap ${DN}`));
    expect(tail).toBe(
      [
        `add chain inet cni_portmap ${DN}`,
        `flush chain inet cni_portmap ${DN}`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 meta l4proto tcp th dport 8080 ip saddr 192.0.2.0/24 jump setmark-13 comment "hairpin tcp 8080 IPv4"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 meta l4proto tcp th dport 8080 ip saddr 127.0.0.1 jump setmark-13 comment "localhost tcp 8080 IPv4"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 meta l4proto tcp th dport 8080 dnat ip to 192.0.2.5:80 comment "dnat tcp 8080 IPv4"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv6 meta l4proto tcp th dport 8080 ip6 saddr 2001:db8::/64 jump setmark-13 comment "hairpin tcp 8080 IPv6"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv6 meta l4proto tcp th dport 8080 dnat ip6 to [2001:db8::5]:80 comment "dnat tcp 8080 IPv6"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 ip daddr 198.51.100.1 meta l4proto udp th dport 53 ip saddr 192.0.2.0/24 jump setmark-13 comment "hairpin udp 198.51.100.1 53 IPv4"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 ip daddr 198.51.100.1 meta l4proto udp th dport 53 ip saddr 127.0.0.1 jump setmark-13 comment "localhost udp 198.51.100.1 53 IPv4"`,
        `add rule inet cni_portmap ${DN} meta nfproto ipv4 ip daddr 198.51.100.1 meta l4proto udp th dport 53 dnat ip to 192.0.2.5:5353 comment "dnat udp 198.51.100.1 53 IPv4"`,
        `add element inet cni_portmap ports { tcp . 8080 comment "net=net1 id=ctr1" : jump ${DN} }`,
        `add element inet cni_portmap hostip4 { 198.51.100.1 . udp . 53 comment "net=net1 id=ctr1" : jump ${DN} }`,
        '',
      ].join('\n'),
    );
  });

  test('ADD fast path: the new chain with its rules in one block and one map re-declaration per element (nft then lists only tables)', () => {
    const text = nft.containerScript(req());
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(new RegExp(`^add chain inet cni_portmap ${DN} \\{ meta nfproto ipv4 .* comment "hairpin tcp 8080 IPv4" ; .* comment "dnat udp 198.51.100.1 53 IPv4" ; \\}$`));
    expect(lines[0]!.split(' ; ')).toHaveLength(9); // eight rules, then the closing brace
    expect(lines.slice(1)).toEqual([
      `add map inet cni_portmap ports { type inet_proto . inet_service : verdict; elements = { tcp . 8080 comment "net=net1 id=ctr1" : jump ${DN} } ; }`,
      `add map inet cni_portmap hostip4 { type ipv4_addr . inet_proto . inet_service : verdict; elements = { 198.51.100.1 . udp . 53 comment "net=net1 id=ctr1" : jump ${DN} } ; }`,
      '',
    ]);
    expect(text).not.toMatch(/^(add rule|add element|flush)/m);
  });

  test('DEL re-adds each element with our verdict, then deletes it and the chain (idempotent, never another container\'s)', () => {
    expect(nft.delScript(req(), [4, 6])).toBe(
      [
        `add chain inet cni_portmap ${DN}`,
        `add element inet cni_portmap ports { tcp . 8080 : jump ${DN} }`,
        'delete element inet cni_portmap ports { tcp . 8080 }',
        `add element inet cni_portmap hostip4 { 198.51.100.1 . udp . 53 : jump ${DN} }`,
        'delete element inet cni_portmap hostip4 { 198.51.100.1 . udp . 53 }',
        `flush chain inet cni_portmap ${DN}`,
        `delete chain inet cni_portmap ${DN}`,
        '',
      ].join('\n'),
    );
    expect(ipt.familiesOf(req({ addresses: [] }))).toEqual([4, 6]);
  });

  test('DEL scoped to the empty scope table declares our table and the maps it touches; the skeleton makes the scope table', () => {
    const body = nft.delScript(req(), [4, 6]);
    expect(nft.delFastScript(req(), [4, 6])).toBe(
      ['add table inet cni_portmap', 'add map inet cni_portmap ports { type inet_proto . inet_service : verdict; }', 'add map inet cni_portmap hostip4 { type ipv4_addr . inet_proto . inet_service : verdict; }', body].join('\n'),
    );
    // A v6-only hostIP mapping is skipped for a v4-only container: no hostip6 to declare.
    expect(nft.delFastScript(req(), [4])).not.toContain('hostip6');
    const scope = ['add table inet cni_portmap_scope { comment "Empty: portmap lists its chain so that nft fetches nothing else" ; }', 'add chain inet cni_portmap_scope scope'];
    expect(nft.SCOPE_CHAIN).toBe('inet cni_portmap_scope scope');
    expect(nft.delScopedHere(req(), [4, 6])).toBe([...scope, body].join('\n'));
    expect(nft.addScript(req()).split('\n').slice(0, 2)).toEqual(scope);
  });

  test('external mark chain: no masquerade chain of ours; GC parses element owners from JSON', () => {
    expect(nft.addScript(req({ externalSetMarkChain: 'KUBE-MARK-MASQ' }))).not.toContain('masq-13');
    const json = JSON.stringify({
      nftables: [{ map: { elem: [[{ elem: { val: { concat: ['udp', 53] }, comment: 'net=n id=c' } }, { jump: { target: 'dn-x' } }], [{ concat: ['tcp', 80] }, { jump: { target: 'dn-y' } }]] } }],
    });
    expect(nft.parseMapListing(json, 'ports')).toEqual([
      { map: 'ports', key: 'udp . 53', comment: 'net=n id=c', target: 'dn-x' },
      { map: 'ports', key: 'tcp . 80', comment: undefined, target: 'dn-y' },
    ]);
  });
});

describe('config and plan', () => {
  const base = { cniVersion: '1.0.0', name: 'n', type: 'portmap' };
  const err = (raw: Record<string, unknown>) => {
    try {
      parseConfig(raw);
    } catch (e) {
      return e as CniError;
    }
    throw new Error('no error');
  };

  test('defaults as the reference: snat on, mark bit 13, no mappings', () => {
    expect(parseConfig({ ...base, backend: 'iptables' })).toEqual({ snat: true, masqAll: false, markMasqBit: 13, backend: 'iptables', mappings: [] });
  });

  test.each([
    [{ runtimeConfig: { portMappings: [{ hostPort: 70000, containerPort: 1, protocol: 'tcp' }] } }, 'runtimeConfig.portMappings[0].hostPort'],
    [{ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'gre' }] } }, 'runtimeConfig.portMappings[0].protocol: must be one of tcp, udp, sctp (got "gre")'],
    [{ markMasqBit: 32 }, 'markMasqBit'],
    [{ markMasqBit: 3, externalSetMarkChain: 'X' }, 'externalSetMarkChain'],
    [{ backend: 'ebpf' }, 'backend'],
    [{ conditionsV4: ['-s', '1.2.3.4\n-A x'] }, 'conditionsV4[1]'],
  ])('%j fails with code 7 naming %s', (extra, where) => {
    const e = err({ ...base, ...extra });
    expect(e.code).toBe(7);
    expect(e.message).toContain(where);
  });

  test('protocols are case-insensitive; a missing one is tcp', () => {
    const c = parseConfig({ ...base, runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'UDP' }, { hostPort: 3, containerPort: 4 }] } });
    expect(c.mappings.map((m) => m.protocol)).toEqual(['udp', 'tcp']);
  });

  test("container addresses: first per family, only the sandbox interface named CNI_IFNAME", () => {
    const prev = {
      interfaces: [{ name: 'br0' }, { name: 'eth0', sandbox: '/run/netns/x' }],
      ips: [{ address: '10.0.0.1/24', interface: 0 }, { address: '10.0.0.5/24', interface: 1 }, { address: '10.0.0.6/24', interface: 1 }, { address: 'fd00::5/64' }],
    };
    expect(containerAddresses(prev, 'eth0')).toEqual(['10.0.0.5/24', 'fd00::5/64']);
  });

  test('UDP flushes per mapped UDP port and family (both when the families are unknown)', () => {
    expect(udpFlushes(req())).toEqual([{ family: 4, port: 53 }, { family: 6, port: 53 }]);
    expect(udpFlushes(req({ addresses: ['192.0.2.5/24'] }))).toEqual([{ family: 4, port: 53 }]);
  });

  test('route_localnet interface: longest prefix in /proc/net/route', () => {
    const table = [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
      'cni0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    ].join('\n');
    expect(routeInterface(table, 0xc0000205)).toBe('cni0');
    expect(routeInterface(table, 0x08080808)).toBe('eth0');
  });
});

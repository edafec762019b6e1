/** Pure logic of the bridge plugin: config rules, planning, names, and the firewall payloads. */
import { createHash } from 'node:crypto';
import { parseCniArgs } from '../../lib/args';
import { CniError } from '../../lib/errors';
import { addPayload, attachmentsInListing, chainName, delPayload, dualRestoreScript, jumpsTo, ruleComment } from '../../lib/firewall/iptables/masquerade';
import { echoedHandles, instanceHash, networkHash, parseChain, parseRecordChains, parseRecords, postroutingIntact, recordChain, recordKey, recordValue, ruleComment as nftComment, rulesScript, skeletonScript } from '../../lib/firewall/nftables/masquerade';
import { batchFailures, batchWord } from '../../lib/net/batch';
import { macProblem, randomMac } from '../../lib/net/mac';
import { attachmentAlias, hostVethName } from '../../lib/net/names';
import { spoofCheckScript, spoofRuleHandles } from '../../lib/net/spoofcheck';
import { loadConf } from '../../plugins/bridge/config';
import { containerAddresses } from '../../plugins/bridge/del';
import { conflictingAddresses, defaultGateway, hasAddresses, planAdd, withGateways, type AddInput } from '../../plugins/bridge/plan';

const raw = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.1.0', name: 'net1', type: 'bridge', ipam: { type: 'host-local' }, ...extra });
const conf = (extra: Record<string, unknown> = {}, args = '') => loadConf(raw(extra), parseCniArgs(args), true);
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return [(e as CniError).code, (e as CniError).message];
  }
  return [0, ''];
};

describe('config', () => {
  test('defaults', () => {
    expect(conf()).toMatchObject({ bridge: 'cni0', isGateway: false, ipMasq: false, vlan: 0, vlanTrunk: [], ipamType: 'host-local' });
  });
  test('isDefaultGateway implies isGateway', () => {
    expect(conf({ isDefaultGateway: true })).toMatchObject({ isGateway: true, isDefaultGateway: true });
  });
  test('MAC precedence: runtimeConfig > args.cni > CNI_ARGS', () => {
    expect(conf({}, 'MAC=02:00:00:00:00:03').mac).toBe('02:00:00:00:00:03');
    expect(conf({ args: { cni: { mac: '02:00:00:00:00:02' } } }, 'MAC=02:00:00:00:00:03').mac).toBe('02:00:00:00:00:02');
    expect(conf({ runtimeConfig: { mac: '02:00:00:00:00:01' }, args: { cni: { mac: '02:00:00:00:00:02' } } }, 'MAC=02:00:00:00:00:03').mac).toBe('02:00:00:00:00:01');
  });
  test('unknown CNI_ARGS keys need IgnoreUnknown (code 4)', () => {
    expect(code(() => conf({}, 'FOO=1'))[0]).toBe(4);
    expect(code(() => conf({}, 'FOO=1;IgnoreUnknown=1'))[0]).toBe(0);
  });
  test('preserveDefaultVlan defaults to true, as the reference; the VLAN gateway is named <bridge>.<vlan>', () => {
    expect(conf({ vlan: 3 }).preserveDefaultVlan).toBe(true);
    expect(conf({ vlan: 3, preserveDefaultVlan: false }).preserveDefaultVlan).toBe(false);
    expect(conf({ vlan: 3, isGateway: true, bridge: 'br1' }).vlanGateway).toBe('br1.3');
    expect(conf({ vlan: 3 }).vlanGateway).toBeUndefined();
    expect(conf({ vlanTrunk: [{ id: 4 }], isGateway: true }).vlanGateway).toBeUndefined();
  });
  test('vlanTrunk collects ranges and ids, sorted and unique', () => {
    expect(conf({ vlanTrunk: [{ minID: 5, maxID: 7 }, { id: 6 }, { id: 2 }] }).vlanTrunk).toEqual([2, 5, 6, 7]);
  });
  test.each([
    [{ hairpinMode: true, promiscMode: true }, 'hairpinMode'],
    [{ disableContainerInterface: true }, 'disableContainerInterface'],
    [{ vlanTrunk: [{ maxID: 3 }] }, 'vlanTrunk[0]'],
    [{ vlan: 4095 }, 'vlan'],
    [{ vlan: 5, vlanTrunk: [{ id: 6 }] }, 'vlan and vlanTrunk'],
    [{ vlan: 4000, isGateway: true, bridge: 'bridge-name1' }, 'bridge-name1.4000'],
    [{ mtu: 67 }, 'mtu'],
    [{ bridge: 'a/b' }, 'bridge'],
    [{ ipam: { subnet: '192.0.2.0/24' } }, 'ipam.type'],
    [{ runtimeConfig: { mac: '03:00:00:00:00:00' } }, 'runtimeConfig.mac'],
  ])('%j is code 7 naming %s', (extra, field) => {
    const [c, m] = code(() => conf(extra));
    expect(c).toBe(7);
    expect(m).toContain(field);
  });
  test('rules about combining settings apply to ADD only (DEL must clean up after any config)', () => {
    const bad = raw({ hairpinMode: true, promiscMode: true, disableContainerInterface: true });
    expect(code(() => loadConf(bad, parseCniArgs(''), true))[0]).toBe(7);
    expect(code(() => loadConf(bad, parseCniArgs('')))[0]).toBe(0);
    expect(code(() => loadConf(raw({ mtu: 'x' }), parseCniArgs('')))[0]).toBe(7);
  });
  test('dns in config is kept only when it sets something', () => {
    expect(conf({ dns: {} }).dns).toBeUndefined();
    expect(conf({ dns: { search: ['x'] } }).dns).toEqual({ search: ['x'] });
  });
});

describe('gateways and routes', () => {
  test('gateway defaults to the first address of the subnet', () => {
    expect(defaultGateway('192.0.2.77/24')).toBe('192.0.2.1');
    expect(defaultGateway('2001:db8::42/64')).toBe('2001:db8::1');
  });
  test('default gateway mode adds a default route per family unless IPAM has one', () => {
    const g = withGateways(conf({ isDefaultGateway: true }), {
      ips: [{ address: '192.0.2.5/24' }, { address: '2001:db8::5/64', gateway: '2001:db8::fe' }],
      routes: [{ dst: '::/0', gw: '2001:db8::fe' }],
    });
    expect(g.ips).toEqual([
      { address: '192.0.2.5/24', gateway: '192.0.2.1', interface: 2 },
      { address: '2001:db8::5/64', gateway: '2001:db8::fe', interface: 2 },
    ]);
    expect(g.routes).toEqual([{ dst: '::/0', gw: '2001:db8::fe' }, { dst: '0.0.0.0/0', gw: '192.0.2.1' }]);
    expect(g.gateways).toEqual(['192.0.2.1/24', '2001:db8::fe/64']);
  });
  test('without gateway mode nothing is added', () => {
    const g = withGateways(conf(), { ips: [{ address: '192.0.2.5/24' }] });
    expect(g).toEqual({ ips: [{ address: '192.0.2.5/24', interface: 2 }], routes: [], gateways: [] });
  });
  test('forceAddress conflicts: any other IPv4 address, only overlapping IPv6 ones', () => {
    expect(conflictingAddresses(['192.0.2.1/24', '10.0.0.1/8'], ['192.0.2.1/24'])).toEqual(['10.0.0.1/8']);
    expect(conflictingAddresses(['2001:db8:1::1/64', '2001:db8::1/48', 'fe80::1/64'], ['2001:db8::1/64'])).toEqual(['2001:db8::1/48']);
  });
});

describe('planAdd', () => {
  const input = (extra: Record<string, unknown> = {}, over: Partial<AddInput> = {}): AddInput => ({
    conf: conf(extra),
    containerID: 'c1',
    ifname: 'eth0',
    netns: '/var/run/netns/x',
    hostVeth: 'veth01234567',
    alias: 'cni/c1/eth0',
    ipam: { ips: [{ address: '192.0.2.5/24' }, { address: '2001:db8::5/64' }], dns: { nameservers: ['192.0.2.53'] } },
    macs: { bridge: '02:00:00:00:00:0b', host: '02:00:00:00:00:0a', container: '02:00:00:00:00:0c' },
    ...over,
  });

  test('new bridge, gateway mode: one host batch creating everything', () => {
    const p = planAdd(input({ isDefaultGateway: true, mtu: 1400, hairpinMode: true }));
    expect(p.hostBatch.map((l) => l.line)).toEqual([
      'link add name cni0 mtu 1400 address 02:00:00:00:00:0b type bridge',
      'link set dev cni0 up',
      'link add name veth01234567 mtu 1400 address 02:00:00:00:00:0a type veth peer name eth0 mtu 1400 address 02:00:00:00:00:0c netns /var/run/netns/x',
      'link set dev veth01234567 addrgenmode none',
      'link set dev veth01234567 alias cni/c1/eth0 master cni0 up',
      'link set dev veth01234567 type bridge_slave hairpin on',
      'addr add 192.0.2.1/24 dev cni0',
      'addr add 2001:db8::1/64 dev cni0 nodad',
    ]);
    expect(p.hostBatch.filter((l) => l.okIfExists).map((l) => l.line.split(' ')[0])).toEqual(['link', 'addr', 'addr']);
    // The port's own IPv6 address is the only thing the batch may do without.
    expect(p.hostBatch.filter((l) => l.optional).map((l) => l.line)).toEqual(['link set dev veth01234567 addrgenmode none']);
    expect([...p.gatewayLines.values()]).toEqual(['192.0.2.1/24', '2001:db8::1/64']);
    expect(p.hostSysctls.map(([k]) => k)).toEqual(['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']);
    expect(p.container.batch).toEqual([
      'link set dev eth0 up',
      'addr add 192.0.2.5/24 dev eth0',
      'addr add 2001:db8::5/64 dev eth0',
      'route add 0.0.0.0/0 via 192.0.2.1 dev eth0',
      'route add ::/0 via 2001:db8::1 dev eth0',
    ]);
    expect(p.container.sysctls).toEqual([
      ['/proc/sys/net/ipv6/conf/lo/disable_ipv6', 0],
      ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6', 0],
    ]);
    expect(p.container.bestEffortSysctls).toContainEqual(['/proc/sys/net/ipv6/conf/eth0/accept_dad', 0]);
    expect(p.result.interfaces).toEqual([
      { name: 'cni0', mac: '02:00:00:00:00:0b' },
      { name: 'veth01234567', mac: '02:00:00:00:00:0a' },
      { name: 'eth0', mac: '02:00:00:00:00:0c', sandbox: '/var/run/netns/x' },
    ]);
    expect(p.result.dns).toEqual({ nameservers: ['192.0.2.53'] });
    expect(p.masquerade).toEqual([]);
  });

  test('existing bridge: not created again; its MAC pinned when it is not yet', () => {
    const p = planAdd(input({ isGateway: true }, { bridge: { mac: '02:aa:00:00:00:01', macPinned: false } }));
    expect(p.hostBatch[0]!.line).toBe('link set dev cni0 up');
    expect(p.hostBatch.at(-1)!.line).toBe('link set dev cni0 address 02:aa:00:00:00:01');
    expect(p.result.interfaces![0]!.mac).toBe('02:aa:00:00:00:01');
  });

  test('IPv4-only attachment: IPv6 off on the container interface before it comes up, unless keepContainerIPv6', () => {
    const off = ['/proc/sys/net/ipv6/conf/eth0/disable_ipv6', 1];
    const v4 = planAdd(input({}, { ipam: { ips: [{ address: '192.0.2.5/24' }] } }));
    expect(v4.container.bestEffortSysctls).toContainEqual(off);
    expect(v4.container.sysctls).toBeUndefined();
    // The sysctls are written before the batch, whose first line brings the link up.
    expect(v4.container.batch![0]).toBe('link set dev eth0 up');
    const kept = planAdd(input({ keepContainerIPv6: true }, { ipam: { ips: [{ address: '192.0.2.5/24' }] } }));
    expect(kept.container.bestEffortSysctls).not.toContainEqual(off);
    expect(kept.container.bestEffortSysctls).toContainEqual(['/proc/sys/net/ipv6/conf/eth0/accept_dad', 0]);
    // Dual stack: IPv6 on (required), never off.
    const dual = planAdd(input());
    expect(dual.container.bestEffortSysctls).not.toContainEqual(off);
    expect(dual.container.sysctls).toContainEqual(['/proc/sys/net/ipv6/conf/eth0/disable_ipv6', 0]);
    // L2 only: the container's IPv6 link-local may be all it has; left alone.
    expect(planAdd(input({ ipam: {} }, { ipam: undefined })).container.bestEffortSysctls).toBeUndefined();
  });

  test('L2 only: no addresses, container link only brought up; disableContainerInterface: no container process', () => {
    const l2 = planAdd(input({ ipam: {} }, { ipam: undefined }));
    expect(l2.container.batch).toEqual(['link set dev eth0 up']);
    expect(l2.result.ips).toBeUndefined();
    const off = planAdd(input({ ipam: {}, disableContainerInterface: true }, { ipam: undefined }));
    expect(off.container).toEqual({});
  });

  test('ipMasq masquerades every container address; config dns overrides IPAM dns', () => {
    const p = planAdd(input({ ipMasq: true, dns: { nameservers: ['198.51.100.53'] } }));
    expect(p.masquerade).toEqual(['192.0.2.5/24', '2001:db8::5/64']);
    expect(p.result.dns).toEqual({ nameservers: ['198.51.100.53'] });
  });

  test('vlan: filtering bridge; access port gets its VLAN as PVID, keeps VLAN 1 unless preserveDefaultVlan is false', () => {
    const p = planAdd(input({ vlan: 100 }));
    expect(p.hostBatch[0]!.line).toContain('vlan_filtering 1');
    expect(p.vlanBatch).toEqual(['vlan add dev veth01234567 vid 100 pvid untagged']);
    const strict = planAdd(input({ vlan: 100, preserveDefaultVlan: false }));
    expect(strict.vlanBatch).toEqual(['vlan add dev veth01234567 vid 100 pvid untagged', 'vlan del dev veth01234567 vid 1']);
  });

  test('vlanTrunk: tagged VLANs; the default VLAN stays unless preserveDefaultVlan is false', () => {
    expect(planAdd(input({ vlanTrunk: [{ id: 5 }, { minID: 7, maxID: 8 }] })).vlanBatch).toEqual([
      'vlan add dev veth01234567 vid 5',
      'vlan add dev veth01234567 vid 7',
      'vlan add dev veth01234567 vid 8',
    ]);
    expect(planAdd(input({ vlanTrunk: [{ id: 5 }], preserveDefaultVlan: false })).vlanBatch).toEqual(['vlan add dev veth01234567 vid 5', 'vlan del dev veth01234567 vid 1']);
  });

  test('vlan + isGateway: the gateway lives on a <bridge>.<vlan> veth whose peer is an access port of the VLAN', () => {
    const macs = { bridge: '02:00:00:00:00:0b', host: '02:00:00:00:00:0a', container: '02:00:00:00:00:0c', vlanGateway: '02:00:00:00:00:0d' };
    const p = planAdd(input({ vlan: 10, isGateway: true, preserveDefaultVlan: false }, { macs }));
    const peer = hostVethName('cni0.10', 'vlan-gateway');
    const lines = p.hostBatch.map((l) => l.line);
    expect(lines.slice(5)).toEqual([
      `link add name cni0.10 address 02:00:00:00:00:0d type veth peer name ${peer}`,
      `link set dev ${peer} addrgenmode none`,
      `link set dev ${peer} alias cni/vlan-gateway/cni0.10 master cni0 up`,
      'link set dev cni0.10 up',
      'addr add 192.0.2.1/24 dev cni0.10',
      'addr add 2001:db8::1/64 dev cni0.10 nodad',
    ]);
    expect(p.hostBatch[p.vlanGatewayCreate!.line]!).toMatchObject({ line: lines[5], okIfExists: true });
    expect(p.vlanGatewayCreate!.vlanBatch).toEqual([`vlan add dev ${peer} vid 10 pvid untagged`, `vlan del dev ${peer} vid 1`]);
    expect(p.result.interfaces![3]).toEqual({ name: 'cni0.10', mac: '02:00:00:00:00:0d' });
    expect(p.result.ips!.every((ip) => ip.interface === 2)).toBe(true);
    // Already there: only the addresses are (re)asserted, and the interface keeps its MAC.
    const again = planAdd(input({ vlan: 10, isGateway: true }, { macs, vlanGateway: { mac: '02:00:00:00:00:ee' } }));
    expect(again.vlanGatewayCreate).toBeUndefined();
    expect(again.hostBatch.map((l) => l.line).filter((l) => l.includes('cni0.10'))).toEqual(['addr add 192.0.2.1/24 dev cni0.10', 'addr add 2001:db8::1/64 dev cni0.10 nodad']);
    expect(again.result.interfaces![3]!.mac).toBe('02:00:00:00:00:ee');
  });

  test('routes carry metric/table/scope and default to the family gateway', () => {
    const p = planAdd(input({ isGateway: true }, { ipam: { ips: [{ address: '192.0.2.5/24' }], routes: [{ dst: '198.51.100.0/24', priority: 10, table: 100, scope: 0 }] } }));
    expect(p.container.batch).toContain('route add 198.51.100.0/24 via 192.0.2.1 dev eth0 metric 10 table 100 scope 0');
  });
});

describe('names', () => {
  test('host veth name is deterministic per attachment and differs per ifname and attempt', () => {
    expect(hostVethName('c1', 'eth0')).toMatch(/^veth[0-9a-f]{8}$/);
    expect(hostVethName('c1', 'eth0')).toBe(hostVethName('c1', 'eth0'));
    expect(hostVethName('c1', 'eth1')).not.toBe(hostVethName('c1', 'eth0'));
    expect(hostVethName('c1', 'eth0', 1)).not.toBe(hostVethName('c1', 'eth0'));
    expect(attachmentAlias('c1', 'eth0')).toBe('cni/c1/eth0');
  });
  test('random MACs are locally administered unicast', () => {
    for (let i = 0; i < 50; i++) expect(macProblem(randomMac())).toBeNull();
    expect(parseInt(randomMac().slice(0, 2), 16) & 3).toBe(2);
    // Random, not a constant that happens to be valid.
    expect(new Set(Array.from({ length: 20 }, randomMac)).size).toBe(20);
  });
  test('batch words are quoted, and impossible ones refused', () => {
    expect(batchWord('eth0')).toBe('eth0');
    expect(batchWord("a'b")).toBe(`"a'b"`);
    expect(() => batchWord('a#b')).toThrow();
  });
  test('ip -force -batch failures are attributed to their lines', () => {
    const f = batchFailures('Error: ipv4: Address already assigned.\nCommand failed -:3\nRTNETLINK answers: File exists\nCommand failed -:5\n');
    expect([...f]).toEqual([
      [2, 'Error: ipv4: Address already assigned.'],
      [4, 'RTNETLINK answers: File exists'],
    ]);
  });
});

describe('iptables masquerade payloads', () => {
  const chain = chainName('net1', 'c1');
  test('chain and comment are the Go plugin\'s', () => {
    // sha512("net1c1")[:24], as utils.FormatChainName computes it.
    expect(chain).toMatch(/^CNI-[0-9a-f]{24}$/);
    expect(chain).toBe(`CNI-${createHash('sha512').update('net1c1').digest('hex').slice(0, 24)}`);
    expect(ruleComment('net1', 'c1')).toBe('name: "net1" id: "c1"');
  });
  test('ADD payload', () => {
    const p = addPayload(4, { chain, comment: ruleComment('net1', 'c1'), ips: ['192.0.2.5'], subnets: ['192.0.2.0/24'] });
    expect(p.split('\n')).toEqual([
      '*nat',
      `:${chain} - [0:0]`,
      `-A ${chain} -d 192.0.2.0/24 -j ACCEPT -m comment --comment "name: \\"net1\\" id: \\"c1\\""`,
      `-A ${chain} ! -d 224.0.0.0/4 -j MASQUERADE -m comment --comment "name: \\"net1\\" id: \\"c1\\""`,
      `-A POSTROUTING -s 192.0.2.5 -j ${chain} -m comment --comment "name: \\"net1\\" id: \\"c1\\""`,
      'COMMIT',
      '',
    ]);
    expect(delPayload(chain, ['-D POSTROUTING x'])).toBe(`*nat\n-D POSTROUTING x\n:${chain} - [0:0]\n-X ${chain}\nCOMMIT\n`);
  });
  test('both families from one shell: v4 in the background, both exit statuses count', () => {
    const script = dualRestoreScript([
      [4, '*nat\nCOMMIT\n'],
      [6, '*nat\nCOMMIT\n'],
    ]);
    expect(script.split('\n')).toEqual([
      "iptables-restore --noflush -w 10 <<'CNI_EOF_A' &",
      '*nat',
      'COMMIT',
      'CNI_EOF_A',
      "ip6tables-restore --noflush -w 10 <<'CNI_EOF_B'",
      '*nat',
      'COMMIT',
      'CNI_EOF_B',
      'b=$?; wait $! && [ $b -eq 0 ]',
      '',
    ]);
  });
  test('listing parsers find jumps and their attachments', () => {
    const other = chainName('net1', 'c2');
    const listing = [
      '-P POSTROUTING ACCEPT',
      `-A POSTROUTING -s 192.0.2.5/32 -m comment --comment "name: \\"net1\\" id: \\"c1\\"" -j ${chain}`,
      `-A POSTROUTING -s 192.0.2.6/32 -m comment --comment "name: \\"net1\\" id: \\"c2\\"" -j ${other}`,
      `-A POSTROUTING -s 192.0.2.7/32 -m comment --comment "name: \\"net2\\" id: \\"c3\\"" -j ${chainName('net2', 'c3')}`,
    ].join('\n');
    expect(jumpsTo(listing, chain)).toEqual([`-D POSTROUTING -s 192.0.2.5/32 -m comment --comment "name: \\"net1\\" id: \\"c1\\"" -j ${chain}`]);
    expect([...attachmentsInListing(listing, 'net1').keys()]).toEqual(['c1', 'c2']);
  });
});

describe('nftables masquerade', () => {
  test('comment is the Go plugin\'s: network hash, instance hash, readable tail', () => {
    const c = nftComment('net1', 'eth0', 'c1');
    expect(c.startsWith(`${networkHash('net1')}-`)).toBe(true);
    expect(c).toBe(`${instanceHash('net1', 'eth0', 'c1')}, net: net1, if: eth0, id: c1`);
    expect(nftComment('n'.repeat(200), 'eth0', 'c1')).toHaveLength(128);
  });
  test('ADD appends one rule per address; the skeleton (sent when missing or damaged) re-asserts chains and refills postrouting as blocks', () => {
    const r = { network: 'net1', containerID: 'c1', ifname: 'eth0', addresses: ['192.0.2.5/24', '2001:db8::5/64'] };
    const comment = JSON.stringify(nftComment('net1', 'eth0', 'c1'));
    expect(rulesScript(r).split('\n')).toEqual([
      `add rule inet cni_plugins_masquerade masq_checks ip saddr 192.0.2.5 ip daddr != 192.0.2.0/24 masquerade comment ${comment}`,
      `add rule inet cni_plugins_masquerade masq_checks ip6 saddr 2001:db8::5 ip6 daddr != 2001:db8::/64 masquerade comment ${comment}`,
      '',
    ]);
    expect(skeletonScript().split('\n')).toEqual([
      'add table inet cni_plugins_masquerade { comment "Masquerading for plugins from github.com/containernetworking/plugins" ; }',
      'add chain inet cni_plugins_masquerade masq_checks { comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet" ; }',
      'add chain inet cni_plugins_masquerade postrouting { type nat hook postrouting priority srcnat ; }',
      'flush chain inet cni_plugins_masquerade postrouting',
      'add chain inet cni_plugins_masquerade postrouting { ip daddr 224.0.0.0/4 return ; ip6 daddr ff00::/8 return ; goto masq_checks ; }',
      '',
    ]);
  });
  test('a record of rule handles: a chain named after the instance hash, first handle and count in its comment', () => {
    const inst = instanceHash('net1', 'eth0', 'c1').replace('-', '');
    expect(recordChain('net1', 'eth0', 'c1')).toBe(`r-${inst}`);
    // As `list chain` prints one (no handles) and `-a list table` prints them among masq_checks' rules.
    expect(parseRecordChains(`table inet cni_plugins_masquerade {\n\tchain r-${inst} {\n\t\tcomment "first=5 count=2"\n\t}\n}\n`)).toEqual([{ instance: inst, first: 5n, count: 2 }]);
    const table = [
      'table inet cni_plugins_masquerade { # handle 7',
      '\tcomment "Masquerading for plugins from github.com/containernetworking/plugins"',
      '\tchain masq_checks { # handle 1',
      '\t\tcomment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"',
      `\t\tip saddr 192.0.2.5 ip daddr != 192.0.2.0/24 masquerade comment "${instanceHash('net1', 'eth0', 'c1')}, net: net1, if: eth0, id: c1" # handle 5`,
      '\t}',
      `\tchain r-${inst} { # handle 6`,
      '\t\tcomment "first=5 count=1"',
      '\t}',
      `\tchain r-${'0'.repeat(31)}1 { # handle 9`,
      '\t\tcomment "first=70000000000 count=3"',
      '\t}',
      '}',
      '',
    ].join('\n');
    expect(parseRecordChains(table)).toEqual([
      { instance: inst, first: 5n, count: 1 },
      { instance: '0'.repeat(31) + '1', first: 70000000000n, count: 3 },
    ]);
    expect(parseChain(table).map((x) => x.handle)).toEqual([5]);
    expect(parseRecordChains('table inet cni_plugins_masquerade {\n\tchain r-123 {\n\t\tcomment "first=1 count=1"\n\t}\n}\n')).toEqual([]);
  });
  test("an older version's record of rule handles: keyed by the instance hash, first handle and count as nft prints them back", () => {
    const inst = instanceHash('net1', 'eth0', 'c1').replace('-', '');
    const key = recordKey('net1', 'eth0', 'c1');
    expect(BigInt(`0x${inst}`).toString(16).padStart(32, '0')).toBe(inst);
    expect(recordValue(5n, 2)).toBe('::5:0:0:0:2');
    expect(recordValue(0xffff_ffff_ffffn, 1)).toBe('0:ffff:ffff:ffff::1');
    // nft prints addresses compressed and elements on as many lines as it likes.
    const listing = `table inet cni_plugins_masquerade {\n\tmap masq_handles { # handle 4\n\t\ttype ipv6_addr : ipv6_addr\n\t\telements = { ${key} : ::5:0:0:0:2,\n\t\t\t     ::1 : ::7:0:0:0:1 }\n\t}\n}\n`;
    expect(parseRecords(listing)).toEqual([
      { instance: inst, first: 5n, count: 2 },
      { instance: '0'.repeat(31) + '1', first: 7n, count: 1 },
    ]);
    expect(parseRecords('table inet cni_plugins_masquerade {\n\tmap masq_handles {\n\t\ttype ipv6_addr : ipv6_addr\n\t}\n}\n')).toEqual([]);
  });
  test('the handles nft echoes for our rules, in order; not those of other chains', () => {
    const echo = [
      'table inet cni_plugins_masquerade {',
      '\tchain postrouting { # handle 2',
      '\t\tgoto masq_checks # handle 3',
      '\t}',
      '}',
      'add rule inet cni_plugins_masquerade postrouting goto masq_checks # handle 9',
      'add rule inet cni_plugins_masquerade masq_checks ip saddr 192.0.2.5 ip daddr != 192.0.2.0/24 masquerade comment "x" # handle 10',
      'add rule inet cni_plugins_masquerade masq_checks ip6 saddr 2001:db8::5 ip6 daddr != 2001:db8::/64 masquerade comment "x" # handle 11',
      '# new generation 3 by process 4517 (nft)',
    ].join('\n');
    expect(echoedHandles(echo)).toEqual([10n, 11n]);
  });
  test('postrouting is intact only with its hook and its three rules in order', () => {
    const listing = (body: string[]) => `table inet cni_plugins_masquerade {\n\tchain postrouting {\n${body.map((l) => `\t\t${l}\n`).join('')}\t}\n}\n`;
    const hook = 'type nat hook postrouting priority srcnat; policy accept;';
    expect(postroutingIntact(listing([hook, 'ip daddr 224.0.0.0/4 return', 'ip6 daddr ff00::/8 return', 'goto masq_checks']))).toBe(true);
    // As `nft -a` lists it (the ADD's session).
    expect(postroutingIntact(listing([hook, 'ip daddr 224.0.0.0/4 return # handle 3', 'ip6 daddr ff00::/8 return # handle 4', 'goto masq_checks # handle 5']))).toBe(true);
    expect(postroutingIntact(listing([hook]))).toBe(false);
    expect(postroutingIntact(listing([hook, 'ip daddr 224.0.0.0/4 return', 'goto masq_checks']))).toBe(false);
    expect(postroutingIntact(listing(['ip daddr 224.0.0.0/4 return', 'ip6 daddr ff00::/8 return', 'goto masq_checks']))).toBe(false);
    expect(postroutingIntact('')).toBe(false);
  });
  test('chain listing is parsed with handles', () => {
    const rules = parseChain('table inet x {\n\tchain masq_checks { # handle 2\n\t\tip saddr 192.0.2.5 ip daddr != 192.0.2.0/24 masquerade comment "abc, net: n" # handle 7\n\t}\n}');
    expect(rules).toEqual([{ body: 'ip saddr 192.0.2.5 ip daddr != 192.0.2.0/24 masquerade', comment: 'abc, net: n', handle: 7 }]);
  });
});

describe('spoof check', () => {
  test('Go layout; teardown finds the PREROUTING rule by comment', () => {
    const s = spoofCheckScript('veth01234567', '02:00:00:00:00:0c', 'c1', 'eth0');
    expect(s).toContain('add rule bridge nat PREROUTING iifname "veth01234567" jump cni-br-iface-c1-eth0 comment "macspoofchk-c1-eth0"');
    expect(s).toContain('ether saddr 02:00:00:00:00:0c return');
    const listing = '\t\tiifname "veth01234567" jump cni-br-iface-c1-eth0 comment "macspoofchk-c1-eth0" # handle 4\n\t\tiifname "vethx" jump cni-br-iface-c2-eth0 comment "macspoofchk-c2-eth0" # handle 5';
    expect(spoofRuleHandles(listing, 'c1', 'eth0')).toEqual([4]);
  });
});

describe('DEL addresses', () => {
  test('from prevResult: the container interface\'s addresses', () => {
    const prev = {
      interfaces: [{ name: 'cni0' }, { name: 'veth1' }, { name: 'eth0', sandbox: '/x' }, { name: 'net1', sandbox: '/x' }],
      ips: [
        { address: '192.0.2.5/24', interface: 2 },
        { address: '198.51.100.5/24', interface: 3 },
      ],
    };
    expect(containerAddresses(prev, 'eth0')).toEqual(['192.0.2.5/24']);
    expect(containerAddresses(undefined, 'eth0')).toEqual([]);
  });
});

test('hasAddresses reads `ip addr show` listings: every address with its prefix, nothing else', () => {
  const listing = [
    '7: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000',
    '    link/ether 2a:1b:3c:4d:5e:6f brd ff:ff:ff:ff:ff:ff',
    '    inet 198.51.100.1/24 brd 198.51.100.255 scope global cni0',
    '       valid_lft forever preferred_lft forever',
    '    inet6 2001:db8:9a::1/64 scope global nodad ',
    '       valid_lft forever preferred_lft forever',
    '    inet6 fe80::281b:3cff:fe4d:5e6f/64 scope link ',
  ].join('\n');
  expect(hasAddresses(listing, ['198.51.100.1/24', '2001:db8:9a::1/64'])).toBe(true);
  expect(hasAddresses(listing, ['198.51.100.1/24'])).toBe(true);
  // Another prefix length is another address to `ip addr add`.
  expect(hasAddresses(listing, ['198.51.100.1/25'])).toBe(false);
  expect(hasAddresses(listing, ['198.51.100.1/24', '2001:db8:9b::1/64'])).toBe(false);
  // The link's MAC or a broadcast address is not an address of the bridge.
  expect(hasAddresses(listing, ['198.51.100.255/24'])).toBe(false);
  expect(hasAddresses('', ['198.51.100.1/24'])).toBe(false);
});

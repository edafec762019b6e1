/**
 * portmap end to end, for both backends: real traffic through the published ports from the host, from an
 * external namespace, through 127.0.0.1, from another container and from the container itself; UDP handover;
 * hostIP; IPv6; CHECK; DEL idempotence and cleanup; GC; input errors that create nothing.
 */
import { mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { attachmentHash, dnatChainName, dnatComment } from '../../lib/firewall/iptables/hostport-rules';
import { canUseNetns, IS_REFERENCE, PLUGIN_DIR, withSandbox } from '../helpers/netns';
import { NET, withBed, type Backend } from './fixture';

const backends: Backend[] = IS_REFERENCE ? ['iptables'] : ['iptables', 'nftables'];
const run = canUseNetns() ? describe.each(backends) : describe.skip.each(backends);

const TCP = { hostPort: 18080, containerPort: 80, protocol: 'tcp' };
const UDP = { hostPort: 15353, containerPort: 53, protocol: 'udp' };

/** Lines of the nat rules that mention the attachment or its host ports. */
const mentions = (rules: string, network: string, id: string, ports: number[]) =>
  rules.split('\n').filter((l) => l.includes(id) || l.includes(attachmentHash(network, id, 21)) || ports.some((p) => l.includes(String(p))));

run('portmap over %s', (backend) => {
  test('TCP and UDP answer through a host address, an external client, 127.0.0.1, another container and the container itself', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-a');
        const other = await b.container('pm-other');
        await b.server(a.ns, 'A', [80], [53]);
        const add = await b.portmap('ADD', 'pm-a', b.portmapConf('pm-a', [TCP, UDP]), a.ns);
        expect(add.stderr).toBe('');
        expect(add.code).toBe(0);
        // The prevResult passes through unchanged, in the request's version.
        expect(add.json).toEqual(b.portmapConf('pm-a', []).prevResult);

        for (const proto of ['tcp', 'udp'] as const) {
          const port = proto === 'tcp' ? TCP.hostPort : UDP.hostPort;
          expect(await b.ask(s.hostNs, proto, NET.host4, port)).toBe('A');
          expect(await b.ask(b.ext, proto, NET.host4, port)).toBe('A');
          expect(await b.ask(s.hostNs, proto, '127.0.0.1', port)).toBe('A');
          expect(await b.ask(other.ns, proto, NET.host4, port)).toBe('A');
          expect(await b.ask(a.ns, proto, NET.host4, port)).toBe('A');
        }
        const bridge = b.bridge;
        expect((await s.exec('cat', [`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`])).stdout.trim()).toBe('1');
      }),
    );
  });

  test('IPv6: a dual-stack container answers on the host IPv6 address, from the host, outside and another container', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm6-a');
        const other = await b.container('pm6-o');
        await b.server(a.ns, 'A6', [80], [53]);
        expect((await b.portmap('ADD', 'pm6-a', b.portmapConf('pm6-a', [TCP, UDP]), a.ns)).code).toBe(0);
        for (const proto of ['tcp', 'udp'] as const) {
          const port = proto === 'tcp' ? TCP.hostPort : UDP.hostPort;
          expect(await b.ask(s.hostNs, proto, NET.host6, port)).toBe('A6');
          expect(await b.ask(b.ext, proto, NET.host6, port)).toBe('A6');
          expect(await b.ask(other.ns, proto, NET.host6, port)).toBe('A6');
        }
      }),
    );
  });

  test('a hostIP mapping answers only on that address', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-h');
        await b.server(a.ns, 'H', [80], [53]);
        const maps = [
          { ...TCP, hostIP: NET.host4 },
          { ...UDP, hostIP: NET.host4 },
        ];
        expect((await b.portmap('ADD', 'pm-h', b.portmapConf('pm-h', maps), a.ns)).code).toBe(0);
        expect(await b.ask(b.ext, 'tcp', NET.host4, TCP.hostPort)).toBe('H');
        expect(await b.ask(b.ext, 'udp', NET.host4, UDP.hostPort)).toBe('H');
        expect(await b.ask(b.ext, 'tcp', NET.link4, TCP.hostPort, { expectNone: true })).toBe('NONE');
        expect(await b.ask(b.ext, 'udp', NET.link4, UDP.hostPort, { expectNone: true })).toBe('NONE');
        // An IPv4 hostIP is skipped for the container's IPv6 address.
        expect(await b.ask(b.ext, 'tcp', NET.host6, TCP.hostPort, { expectNone: true })).toBe('NONE');
      }),
    );
  });

  test('a UDP host port handed from one container to another answers from the new one for a client that keeps its source port', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-ua');
        const c = await b.container('pm-ub');
        await b.server(a.ns, 'OLD', [], [53]);
        await b.server(c.ns, 'NEW', [], [53]);
        expect((await b.portmap('ADD', 'pm-ua', b.portmapConf('pm-ua', [UDP]), a.ns)).code).toBe(0);
        expect(await b.ask(b.ext, 'udp', NET.host4, UDP.hostPort, { srcPort: 40123 })).toBe('OLD');
        // The old container's server keeps running: only the conntrack flush stops its flow.
        expect((await b.portmap('DEL', 'pm-ua', b.portmapConf('pm-ua', [UDP]), a.ns)).code).toBe(0);
        expect((await b.portmap('ADD', 'pm-ub', b.portmapConf('pm-ub', [UDP]), c.ns)).code).toBe(0);
        expect(await b.ask(b.ext, 'udp', NET.host4, UDP.hostPort, { srcPort: 40123 })).toBe('NEW');
      }),
    );
  });

  test('CHECK passes, then fails naming the rule after it was deleted by hand', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-chk');
        const conf = b.portmapConf('pm-chk', [TCP]);
        expect((await b.portmap('ADD', 'pm-chk', conf, a.ns)).code).toBe(0);
        const ok = await b.portmap('CHECK', 'pm-chk', conf, a.ns);
        expect(ok.stdout).toBe('');
        expect(ok.code).toBe(0);
        // An IPv4-only container (the Go portmap 1.1.1 fails this CHECK).
        const v4 = await b.container('pm-chk4');
        const prev4 = b.portmapConf('pm-chk4', []).prevResult as { ips: Array<{ address: string }> };
        const conf4 = { ...b.portmapConf('pm-chk4', [{ ...TCP, hostPort: 18081 }]), prevResult: { ...prev4, ips: prev4.ips.filter((i) => !i.address.includes(':')) } };
        expect((await b.portmap('ADD', 'pm-chk4', conf4, v4.ns)).code).toBe(0);
        expect(await b.portmap('CHECK', 'pm-chk4', conf4, v4.ns)).toMatchObject({ code: 0, stdout: '' });
        if (backend === 'iptables') {
          const chain = `CNI-DN-${attachmentHash(b.network, 'pm-chk', 21)}`;
          const ip4 = (b.portmapConf('pm-chk', []).prevResult as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0];
          await s.exec('iptables', ['-t', 'nat', '-D', chain, '-p', 'tcp', '--dport', '18080', '-j', 'DNAT', '--to-destination', `${ip4}:80`]);
        } else {
          const chain = `dn-${attachmentHash(b.network, 'pm-chk', 21)}`;
          const listing = (await s.exec('nft', ['-a', 'list', 'chain', 'inet', 'cni_portmap', chain])).stdout;
          const handle = /comment "dnat tcp 18080 IPv4" # handle (\d+)/.exec(listing)![1]!;
          await s.exec('nft', ['delete', 'rule', 'inet', 'cni_portmap', chain, 'handle', handle]);
        }
        const bad = await b.portmap('CHECK', 'pm-chk', conf, a.ns);
        expect(bad.code).not.toBe(0);
        expect(bad.json.msg).toMatch(/DNAT|dnat/);
        expect(bad.json.msg).toContain('18080');
      }),
    );
  });

  test('DEL twice, and DEL without netns or prevResult, leave no rule mentioning the container or its ports', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-d1');
        const c = await b.container('pm-d2');
        const maps = [TCP, UDP, { hostPort: 18443, containerPort: 443, protocol: 'tcp', hostIP: NET.host4 }];
        const ports = maps.map((m) => m.hostPort);
        expect((await b.portmap('ADD', 'pm-d1', b.portmapConf('pm-d1', maps), a.ns)).code).toBe(0);
        expect((await b.portmap('ADD', 'pm-d2', b.portmapConf('pm-d2', [{ hostPort: 19090, containerPort: 90, protocol: 'tcp' }]), c.ns)).code).toBe(0);
        expect(mentions(await b.natRules(), b.network, 'pm-d1', ports).length).toBeGreaterThan(0);

        const trace = join(s.dir, 'del-trace');
        for (let i = 0; i < 2; i++) {
          const r = await b.portmap('DEL', 'pm-d1', b.portmapConf('pm-d1', maps), a.ns, i === 0 ? { CNI_TS_TRACE: trace } : {});
          expect(r.stdout).toBe('');
          expect(r.code).toBe(0);
        }
        if (backend === 'nftables') {
          // The DEL of what its ADD made is one transaction (its slow path lists our maps and the chain first).
          expect(readFileSync(trace, 'utf8').split('\n').filter((l) => / nft /.test(l))).toHaveLength(1);
        }
        expect(mentions(await b.natRules(), b.network, 'pm-d1', ports)).toEqual([]);

        // The second container: its netns is gone and the runtime lost the prevResult.
        await s.exec('ip', ['netns', 'del', c.ns]);
        const r = await b.portmap('DEL', 'pm-d2', b.portmapConf('pm-d2', [{ hostPort: 19090, containerPort: 90, protocol: 'tcp' }], {}, false));
        expect(r.stdout).toBe('');
        expect(r.code).toBe(0);
        const left = await b.natRules();
        expect(mentions(left, b.network, 'pm-d2', [19090])).toEqual([]);
        // Shared top-level chains stay.
        expect(left).toContain(backend === 'iptables' ? 'CNI-HOSTPORT-DNAT' : 'cni_portmap');
      }),
    );
  });

  test('DEL on a skeleton an older version made (no scope table) removes everything, makes the scope table, and the next DEL is one process', async () => {
    if (backend !== 'nftables') return;
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const [a, c] = [await b.container('pm-s1'), await b.container('pm-s2')];
        const maps = (port: number) => [{ hostPort: port, containerPort: 80, protocol: 'tcp' }];
        for (const [id, ns, port] of [['pm-s1', a.ns, 18181], ['pm-s2', c.ns, 18182]] as const) {
          expect((await b.portmap('ADD', id, b.portmapConf(id, maps(port)), ns)).code).toBe(0);
        }
        const scopeTable = async () => (await s.exec('nft', ['list', 'tables'])).stdout.includes('table inet cni_portmap_scope');
        expect(await scopeTable()).toBe(true);
        await s.exec('nft', ['delete', 'table', 'inet', 'cni_portmap_scope']);
        const trace = join(s.dir, 'scope-trace');
        const nftRuns = () => readFileSync(trace, 'utf8').split('\n').filter((l) => / nft /.test(l));
        expect((await b.portmap('DEL', 'pm-s1', b.portmapConf('pm-s1', maps(18181)), a.ns, { CNI_TS_TRACE: trace })).code).toBe(0);
        // The scoped DEL failed for want of the scope table; the one scoped to hostports did the work and made it.
        expect(nftRuns()).toHaveLength(2);
        expect(mentions(await b.natRules(), b.network, 'pm-s1', [18181])).toEqual([]);
        expect(await scopeTable()).toBe(true);
        rmSync(trace);
        expect((await b.portmap('DEL', 'pm-s2', b.portmapConf('pm-s2', maps(18182)), c.ns, { CNI_TS_TRACE: trace })).code).toBe(0);
        expect(nftRuns()).toHaveLength(1);
        expect(mentions(await b.natRules(), b.network, 'pm-s2', [18182])).toEqual([]);
      }),
    );
  });

  test('iptables-nft: DEL removes what ADD made by rule handle (one nft, no iptables), and spares a rule sitting where the jump was guessed', async () => {
    if (backend !== 'iptables') return;
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const [a, c] = [await b.container('pm-h1'), await b.container('pm-h2')];
        const map = (port: number) => [{ hostPort: port, containerPort: 80, protocol: 'tcp' }];
        expect((await b.portmap('ADD', 'pm-h1', b.portmapConf('pm-h1', map(18281)), a.ns)).code).toBe(0);
        const trace = join(s.dir, 'handle-trace');
        expect((await b.portmap('DEL', 'pm-h1', b.portmapConf('pm-h1', map(18281)), a.ns, { CNI_TS_TRACE: trace })).code).toBe(0);
        expect(mentions(await b.natRules(), b.network, 'pm-h1', [18281])).toEqual([]);
        if (!IS_REFERENCE) {
          const spawned = readFileSync(trace, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
          expect(spawned).toHaveLength(1);
          expect(spawned[0]).toMatch(/ nft -a -i /);
        }

        // pm-h2 made one rule per process, as the Go plugin does, with someone else's rule added between its
        // chain's last rule and its jump: the handle after that rule is not the jump.
        const chain = dnatChainName(b.network, 'pm-h2');
        const nat = (args: string[]) => s.exec('iptables', ['-t', 'nat', ...args]);
        await nat(['-N', chain]);
        await nat(['-A', chain, '-p', 'tcp', '--dport', '18282', '-j', 'DNAT', '--to-destination', `${c.ip4}:80`]);
        await nat(['-A', 'CNI-HOSTPORT-DNAT', '-p', 'tcp', '--dport', '18999', '-m', 'comment', '--comment', 'not CNI', '-j', 'RETURN']);
        await nat(['-A', 'CNI-HOSTPORT-DNAT', '-m', 'comment', '--comment', dnatComment(b.network, 'pm-h2'), '-m', 'multiport', '-p', 'tcp', '--destination-ports', '18282', '-j', chain]);
        expect((await b.portmap('DEL', 'pm-h2', b.portmapConf('pm-h2', map(18282)), c.ns)).code).toBe(0);
        const left = await b.natRules();
        expect(mentions(left, b.network, 'pm-h2', [18282])).toEqual([]);
        expect(left).toContain('-A CNI-HOSTPORT-DNAT -p tcp -m tcp --dport 18999 -m comment --comment "not CNI" -j RETURN');
      }),
    );
  });

  test('DEL with fewer mappings than ADD had still removes everything of the container', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-dm');
        const maps = [TCP, UDP, { hostPort: 18443, containerPort: 443, protocol: 'tcp', hostIP: NET.host4 }];
        expect((await b.portmap('ADD', 'pm-dm', b.portmapConf('pm-dm', maps), a.ns)).code).toBe(0);
        expect((await b.portmap('DEL', 'pm-dm', b.portmapConf('pm-dm', [TCP]), a.ns)).code).toBe(0);
        expect(mentions(await b.natRules(), b.network, 'pm-dm', maps.map((m) => m.hostPort))).toEqual([]);
      }),
    );
  });

  test('STATUS succeeds where the backend works and is 50 when no backend can be used', async () => {
    await withSandbox(async (s) => {
      const conf = { cniVersion: '1.1.0', name: 'pmstatus', type: 'portmap', backend };
      const ok = await s.plugin('portmap', { command: 'STATUS', conf });
      expect(ok.stdout).toBe('');
      expect(ok.code).toBe(0);
      // A PATH with `ip` (to enter the namespace) but neither iptables nor nft.
      const bin = `${s.dir}/bin`;
      mkdirSync(bin);
      symlinkSync('/bin/ip', `${bin}/ip`);
      for (const c of [conf, { ...conf, backend: undefined }]) {
        const r = await s.plugin('portmap', { command: 'STATUS', conf: c, env: { PATH: bin } });
        expect(r.code).not.toBe(0);
        expect(r.json).toMatchObject({ code: 50, msg: expect.stringContaining('no usable firewall backend') });
      }
    });
  });

  test('concurrent first ADDs on a fresh host set the shared rules up exactly once', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const ids = ['pm-c1', 'pm-c2', 'pm-c3', 'pm-c4'];
        const nets = await Promise.all(ids.map((id) => b.container(id)));
        const rs = await Promise.all(ids.map((id, i) => b.portmap('ADD', id, b.portmapConf(id, [{ ...TCP, hostPort: 18100 + i }]), nets[i]!.ns)));
        expect(rs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
        const rules = (await b.natRules()).split('\n');
        const count = (re: RegExp) => rules.filter((l) => re.test(l)).length;
        if (backend === 'iptables') {
          expect(count(/^-A PREROUTING .*-j CNI-HOSTPORT-DNAT$/)).toBe(2); // one per family
          expect(count(/^-A POSTROUTING .*-j CNI-HOSTPORT-MASQ$/)).toBe(2);
          expect(count(/^-A CNI-HOSTPORT-SETMARK /)).toBe(2);
        } else {
          expect(count(/fib daddr type local jump hostports/)).toBe(2); // prerouting and output
          expect(count(/masquerade$/)).toBe(1);
        }
        for (const [i, id] of ids.entries()) expect((await b.portmap('CHECK', id, b.portmapConf(id, [{ ...TCP, hostPort: 18100 + i }]), nets[i]!.ns)).code).toBe(0);
      }),
    );
  });

  test('a failed ADD leaves nothing behind (IPv4 went in, IPv6 failed) and an occupied nftables port is refused', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-f1');
        // A condition the backend rejects, for IPv6 only: the IPv4 half is applied first and must be undone.
        const cond = backend === 'iptables' ? { conditionsV6: ['--no-such-option'] } : { conditionsV6: ['no such expression'] };
        const r = await b.portmap('ADD', 'pm-f1', b.portmapConf('pm-f1', [TCP], cond), a.ns);
        expect(r.code).not.toBe(0);
        expect(r.json.msg).toBeTruthy();
        expect(mentions(await b.natRules(), b.network, 'pm-f1', [TCP.hostPort])).toEqual([]);
        if (backend === 'iptables') return;
        // nftables maps hold one owner per host port: a second container asking for it is refused, the first keeps it.
        const c = await b.container('pm-f2');
        expect((await b.portmap('ADD', 'pm-f1', b.portmapConf('pm-f1', [TCP]), a.ns)).code).toBe(0);
        const own = { hostPort: 19000, containerPort: 90, protocol: 'tcp' };
        expect((await b.portmap('ADD', 'pm-f2', b.portmapConf('pm-f2', [own]), c.ns)).code).toBe(0);
        const clash = await b.portmap('ADD', 'pm-f2', b.portmapConf('pm-f2', [own, TCP]), c.ns);
        expect(clash.json).toMatchObject({ code: 7, msg: expect.stringContaining(`tcp ${TCP.hostPort} is already published`) });
        // The runtime's DEL after the failed ADD names the contested port too: it must not take it from pm-f1.
        expect((await b.portmap('DEL', 'pm-f2', b.portmapConf('pm-f2', [own, TCP]), c.ns)).code).toBe(0);
        expect(mentions(await b.natRules(), b.network, 'pm-f2', [19000])).toEqual([]);
        expect((await b.portmap('CHECK', 'pm-f1', b.portmapConf('pm-f1', [TCP]), a.ns)).code).toBe(0);
      }),
    );
  });

  test('GC removes the mappings of attachments that are not valid and keeps the valid ones', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-gk');
        const c = await b.container('pm-gd');
        expect((await b.portmap('ADD', 'pm-gk', b.portmapConf('pm-gk', [TCP]), a.ns)).code).toBe(0);
        expect((await b.portmap('ADD', 'pm-gd', b.portmapConf('pm-gd', [UDP]), c.ns)).code).toBe(0);
        const gcConf = { cniVersion: '1.1.0', name: b.network, type: 'portmap', backend, 'cni.dev/valid-attachments': [{ containerID: 'pm-gk', ifname: 'eth0' }] };
        const r = await b.s.plugin('portmap', { command: 'GC', conf: gcConf });
        expect(r.stdout).toBe('');
        expect(r.code).toBe(0);
        const rules = await b.natRules();
        expect(mentions(rules, b.network, 'pm-gd', [UDP.hostPort])).toEqual([]);
        expect(mentions(rules, b.network, 'pm-gk', [TCP.hostPort]).length).toBeGreaterThan(0);
        expect((await b.portmap('CHECK', 'pm-gk', b.portmapConf('pm-gk', [TCP]), a.ns)).code).toBe(0);
      }),
    );
  });

  test('no port mappings: ADD, CHECK and DEL make no netfilter call; bad entries fail with code 7 and create nothing', async () => {
    await withSandbox((s) =>
      withBed(s, backend, async (b) => {
        const a = await b.container('pm-n');
        const trace = join(s.dir, 'trace');
        for (const cmd of ['ADD', 'CHECK', 'DEL']) {
          const r = await b.portmap(cmd, 'pm-n', b.portmapConf('pm-n', []), a.ns, { CNI_TS_TRACE: trace });
          expect(r.code).toBe(0);
        }
        let spawned = '';
        try {
          spawned = readFileSync(trace, 'utf8');
        } catch {
          // no trace file: nothing was spawned
        }
        // "#" lines are the plugin's own steps; anything else is a process it started.
        expect(spawned.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([]);
        rmSync(trace, { force: true });

        const before = await b.natRules();
        const bad: Array<[unknown, RegExp]> = [
          [[{ hostPort: 0, containerPort: 80, protocol: 'tcp' }], /portMappings\[0\]\.hostPort/],
          [[TCP, { hostPort: 80, containerPort: 65536, protocol: 'tcp' }], /portMappings\[1\]\.containerPort/],
          [[{ hostPort: 80, containerPort: 80, protocol: 'icmp' }], /portMappings\[0\]\.protocol.*icmp/],
          [[{ hostPort: 80, containerPort: 80, protocol: 'tcp', hostIP: 'nope' }], /portMappings\[0\]\.hostIP.*nope/],
        ];
        for (const [maps, msg] of bad) {
          const r = await b.portmap('ADD', 'pm-n', { ...b.portmapConf('pm-n', []), runtimeConfig: { portMappings: maps } }, a.ns);
          expect(r.code).not.toBe(0);
          expect(r.json).toMatchObject({ code: 7, msg: expect.stringMatching(msg) });
        }
        const badKey = await b.portmap('ADD', 'pm-n', b.portmapConf('pm-n', [TCP], { markMasqBit: 32 }), a.ns);
        expect(badKey.json).toMatchObject({ code: 7, msg: expect.stringContaining('markMasqBit') });
        expect(await b.natRules()).toBe(before);
      }),
    );
  });
});

const GO_PLUGINS = '/usr/lib/cni';
(canUseNetns() && !IS_REFERENCE ? test : test.skip)('iptables: ours and the Go portmap tear down each other\'s rules (same chains, same shapes)', async () => {
  await withSandbox((s) =>
    withBed(s, 'iptables', async (b) => {
      const a = await b.container('pm-x1');
      const c = await b.container('pm-x2');
      const confA = b.portmapConf('pm-x1', [TCP, UDP]);
      const confC = b.portmapConf('pm-x2', [{ hostPort: 19191, containerPort: 91, protocol: 'tcp' }]);
      const go = (command: string, id: string, conf: unknown, ns: string) => s.plugin('portmap', { command, conf, containerID: id, netns: `/var/run/netns/${ns}` }, GO_PLUGINS);
      const ours = (command: string, id: string, conf: unknown, ns: string) => s.plugin('portmap', { command, conf, containerID: id, netns: `/var/run/netns/${ns}` }, PLUGIN_DIR);
      expect((await go('ADD', 'pm-x1', confA, a.ns)).code).toBe(0);
      expect((await ours('ADD', 'pm-x2', confC, c.ns)).code).toBe(0);
      await b.server(a.ns, 'X1', [80], []);
      await b.server(c.ns, 'X2', [91], []);
      expect(await b.ask(b.ext, 'tcp', NET.host4, TCP.hostPort)).toBe('X1');
      expect(await b.ask(b.ext, 'tcp', NET.host4, 19191)).toBe('X2');
      expect((await ours('DEL', 'pm-x1', confA, a.ns)).code).toBe(0);
      expect((await go('DEL', 'pm-x2', confC, c.ns)).code).toBe(0);
      const rules = await b.natRules();
      expect(mentions(rules, b.network, 'pm-x1', [TCP.hostPort, UDP.hostPort])).toEqual([]);
      expect(mentions(rules, b.network, 'pm-x2', [19191])).toEqual([]);
    }),
  );
});

/**
 * CHECK, DEL and GC on both masquerade backends: DEL leaves no veth, reservation or rule behind whether it runs
 * twice, after the netns is gone, or after the container's address was removed (the Go plugin leaks rules in the
 * last two); GC removes what belongs to attachments the runtime no longer lists.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, uniqueName, withSandbox, type Sandbox } from '../helpers/netns';
import { instanceHash, recordChain, recordKey, recordValue } from '../../lib/firewall/nftables/masquerade';
import { withoutInteractiveNft } from '../helpers/nft';
import { addrOnly, bridgeConf, call, cniPath, HAS_1_1, hostLinks, natState, reservations, withPrev } from './helpers';

const d = canUseNetns() ? describe : describe.skip;
const BACKENDS = ['iptables', 'nftables'] as const;
const test11 = HAS_1_1 ? test : test.skip;

async function setup(s: Sandbox, backend: string) {
  const bridge = uniqueName('cbr');
  const conf = bridgeConf(s, { bridge, v4: '192.0.2.0/24', v6: '2001:db8:b2::/64', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: backend } });
  const ns = await s.container();
  const r = await call(s, 'ADD', conf, 'life1', ns);
  expect(r.json?.msg).toBeUndefined();
  expect(r.code).toBe(0);
  return { bridge, conf, ns, result: r.json };
}

async function expectClean(s: Sandbox, bridge: string) {
  expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
  expect(await hostLinks(s)).toContain(bridge);
  expect(reservations(s)).toEqual([]);
  expect(await natState(s)).toEqual([]);
}

d.each(BACKENDS)('bridge lifecycle (%s)', (backend) => {
  test('ADD installs the masquerade rules the reference would', async () => {
    await withSandbox(async (s) => {
      const { result } = await setup(s, backend);
      const rules = await natState(s);
      const v4 = addrOnly(result.ips[0].address);
      if (backend === 'iptables') {
        expect(rules.some((l) => l.includes(`-A POSTROUTING -s ${v4}/32 -m comment --comment "name: \\"brtest\\" id: \\"life1\\""`))).toBe(true);
        expect(rules.some((l) => /-d 192\.0\.2\.0\/24 .* -j ACCEPT/.test(l))).toBe(true);
        expect(rules.some((l) => /! -d 224\.0\.0\.0\/4 .* -j MASQUERADE/.test(l))).toBe(true);
        expect(rules.some((l) => /ip6tables-save: .*! -d ff00::\/8 .* -j MASQUERADE/.test(l))).toBe(true);
      } else {
        expect(rules).toContainEqual(expect.stringContaining(`ip saddr ${v4} ip daddr != 192.0.2.0/24 masquerade comment`));
        expect(rules).toContainEqual(expect.stringContaining('net: brtest, if: eth0, id: life1'));
      }
    });
  });

  test('CHECK passes on a healthy attachment and fails with a JSON error once the address is removed', async () => {
    await withSandbox(async (s) => {
      const { conf, ns, result } = await setup(s, backend);
      const ok = await call(s, 'CHECK', withPrev(conf, result), 'life1', ns);
      expect(ok.stdout).toBe('');
      expect(ok.code).toBe(0);
      await s.exec('ip', ['addr', 'del', result.ips[0].address, 'dev', 'eth0'], { ns });
      const bad = await call(s, 'CHECK', withPrev(conf, result), 'life1', ns);
      expect(bad.code).not.toBe(0);
      expect(bad.json).toMatchObject({ code: expect.any(Number), msg: expect.stringContaining(result.ips[0].address) });
    });
  });

  test('CHECK names a missing masquerade rule', async () => {
    await withSandbox(async (s) => {
      const { conf, ns, result } = await setup(s, backend);
      if (backend === 'iptables') await s.exec('iptables', ['-t', 'nat', '-F', 'POSTROUTING']);
      else await s.exec('nft', ['flush', 'chain', 'inet', 'cni_plugins_masquerade', 'masq_checks']);
      const bad = await call(s, 'CHECK', withPrev(conf, result), 'life1', ns);
      expect(bad.json?.msg).toMatch(/masquerade/);
    });
  });

  // The iptables backend has no shared chain of its own to damage (each container's chain is jumped to from POSTROUTING).
  if (backend === 'nftables') test('an ADD restores the shared postrouting chain when it was damaged, and adds its rules once', async () => {
    await withSandbox(async (s) => {
      const { conf } = await setup(s, backend);
      const postrouting = ['list', 'chain', 'inet', 'cni_plugins_masquerade', 'postrouting'];
      const intact = (await s.exec('nft', postrouting)).stdout;
      await s.exec('nft', ['flush', 'chain', 'inet', 'cni_plugins_masquerade', 'postrouting']);
      const r = await call(s, 'ADD', conf, 'life-heal', await s.container());
      expect(r.json?.msg).toBeUndefined();
      expect((await s.exec('nft', postrouting)).stdout).toBe(intact);
      expect((await natState(s)).filter((l) => l.includes('id: life-heal'))).toHaveLength(2);
    });
  });

  if (backend === 'nftables') {
    const masqChecks = async (s: Sandbox) => (await s.exec('nft', ['-a', 'list', 'chain', 'inet', 'cni_plugins_masquerade', 'masq_checks'])).stdout.split('\n');
    const handlesOf = async (s: Sandbox, id: string) => (await masqChecks(s)).filter((l) => l.includes(`id: ${id}`)).map((l) => BigInt(/# handle (\d+)$/.exec(l)![1]!));
    const recordsOf = async (s: Sandbox) => (await natState(s)).filter((l) => l.startsWith('nft record: '));
    const recordFor = async (s: Sandbox, id: string) => {
      const hs = await handlesOf(s, id);
      return `nft record: ${instanceHash('brtest', 'eth0', id).replace('-', '')} -> ${hs[0]} (${hs.length})`;
    };

    test('ADD records where its rules are; DEL removes them by that record, in one nft process', async () => {
      await withSandbox(async (s) => {
        const { bridge, conf, ns, result } = await setup(s, backend);
        expect(await handlesOf(s, 'life1')).toHaveLength(2);
        expect(await recordsOf(s)).toEqual([await recordFor(s, 'life1')]);
        const trace = join(s.dir, 'del-trace');
        const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns, { env: { CNI_TS_TRACE: trace } });
        expect(r.code).toBe(0);
        const lines = readFileSync(trace, 'utf8').split('\n');
        expect(lines).toContainEqual(expect.stringContaining('# masquerade rules removed by their recorded handles'));
        expect(lines.filter((l) => /^\d+ms (flock .* )?nft /.test(l))).toHaveLength(1);
        await expectClean(s, bridge);
      });
    });

    test('with an nft that has no interactive mode: ADD and DEL work without a record and leave nothing', async () => {
      await withSandbox(async (s) => {
        await withoutInteractiveNft(async (env) => {
          const bridge = uniqueName('cbr');
          const conf = bridgeConf(s, { bridge, v4: '192.0.2.0/24', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: backend } });
          const ns = await s.container();
          const pathEnv = { PATH: env.PATH! };
          const r = await call(s, 'ADD', conf, 'life-noi', ns, { env: pathEnv });
          expect(r.json?.msg).toBeUndefined();
          expect(await handlesOf(s, 'life-noi')).toHaveLength(1);
          expect(await recordsOf(s)).toEqual([]);
          expect((await call(s, 'DEL', withPrev(conf, r.json), 'life-noi', ns, { env: pathEnv })).code).toBe(0);
          await expectClean(s, bridge);
        });
      });
    });

    test('a record whose rules someone else removed in part: DEL lists the chain and leaves neither rule nor record', async () => {
      await withSandbox(async (s) => {
        const { bridge, conf, ns, result } = await setup(s, backend);
        const [first] = await handlesOf(s, 'life1');
        await s.exec('nft', ['delete', 'rule', 'inet', 'cni_plugins_masquerade', 'masq_checks', 'handle', String(first)]);
        const trace = join(s.dir, 'del-trace');
        const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns, { env: { CNI_TS_TRACE: trace } });
        expect(r.code).toBe(0);
        expect(readFileSync(trace, 'utf8')).not.toContain('recorded handles');
        await expectClean(s, bridge);
      });
    });

    test('ADD replaces a record its rules outlived (the Go plugin\'s DEL removes the rules, not our record)', async () => {
      await withSandbox(async (s) => {
        const { bridge, conf, ns, result } = await setup(s, backend);
        const ns2 = await s.container();
        const r2 = await call(s, 'ADD', conf, 'life2', ns2);
        expect(r2.code).toBe(0);
        expect(await recordsOf(s)).toEqual([await recordFor(s, 'life1'), await recordFor(s, 'life2')]);
        // As the Go plugin's DEL leaves it: veth, reservation and rules (found by comment) gone, our record there.
        for (const h of await handlesOf(s, 'life2')) await s.exec('nft', ['delete', 'rule', 'inet', 'cni_plugins_masquerade', 'masq_checks', 'handle', String(h)]);
        await s.exec('ip', ['link', 'del', r2.json.interfaces[1].name]);
        for (const ip of r2.json.ips) rmSync(join(s.dir, 'ipam-data', 'brtest', addrOnly(ip.address)));
        const stale = await recordsOf(s);
        expect(stale).toHaveLength(2);
        const again = await call(s, 'ADD', conf, 'life2', ns2);
        expect(again.json?.msg).toBeUndefined();
        expect(await recordsOf(s)).toEqual([await recordFor(s, 'life1'), await recordFor(s, 'life2')]);
        expect(await recordsOf(s)).not.toEqual(stale);
        expect((await call(s, 'DEL', withPrev(conf, again.json), 'life2', ns2)).code).toBe(0);
        expect((await call(s, 'DEL', withPrev(conf, result), 'life1', ns)).code).toBe(0);
        await expectClean(s, bridge);
      });
    });

    test("a record an older version kept in the masq_handles map: DEL removes the rules by it and the element; GC the element of a gone attachment", async () => {
      await withSandbox(async (s) => {
        const { bridge, conf, ns, result } = await setup(s, backend);
        const T = ['inet', 'cni_plugins_masquerade'];
        const asOlder = async (id: string) => {
          const hs = await handlesOf(s, id);
          await s.exec('nft', ['delete', 'chain', ...T, recordChain('brtest', 'eth0', id)]);
          await s.exec('nft', ['add', 'map', ...T, 'masq_handles', '{ type ipv6_addr : ipv6_addr ; }']);
          await s.exec('nft', ['add', 'element', ...T, 'masq_handles', `{ ${recordKey('brtest', 'eth0', id)} : ${recordValue(hs[0]!, hs.length)} }`]);
        };
        await asOlder('life1');
        expect(await recordsOf(s)).toEqual([await recordFor(s, 'life1')]);
        const trace = join(s.dir, 'del-trace');
        expect((await call(s, 'DEL', withPrev(conf, result), 'life1', ns, { env: { CNI_TS_TRACE: trace } })).code).toBe(0);
        expect(readFileSync(trace, 'utf8')).toContain('recorded handles');
        await expectClean(s, bridge);
        if (!HAS_1_1) return;
        // GC: the element of an attachment the runtime no longer lists goes, with its rules.
        const ns3 = await s.container();
        expect((await call(s, 'ADD', conf, 'life3', ns3)).code).toBe(0);
        await asOlder('life3');
        const gc = await s.plugin('bridge', { command: 'GC', conf: { ...conf, 'cni.dev/valid-attachments': [] }, path: cniPath(s) });
        expect(gc.code).toBe(0);
        expect((await natState(s)).filter((l) => l.startsWith('nft'))).toEqual([]);
      });
    });
  }

  test('DEL twice leaves nothing, and the same attachment can be added again at once', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns, result } = await setup(s, backend);
      const trace = join(s.dir, 'del-trace');
      for (let i = 0; i < 2; i++) {
        const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns, i === 0 ? { env: { CNI_TS_TRACE: trace } } : {});
        expect(r.stdout).toBe('');
        expect(r.code).toBe(0);
      }
      // The veth delete is done once the link is gone from /sys, not when ip exits.
      if (!IS_REFERENCE) expect(readFileSync(trace, 'utf8')).toMatch(/ip -batch - -> 0 \(done; its exit not awaited\)/);
      await expectClean(s, bridge);
      // Same container ID and ifname, so the same host veth name, right away.
      const again = await call(s, 'ADD', conf, 'life1', ns);
      expect(again.json?.msg).toBeUndefined();
      expect(again.code).toBe(0);
      const trace2 = join(s.dir, 'del-trace-2');
      expect((await call(s, 'DEL', withPrev(conf, again.json), 'life1', ns, { env: { CNI_TS_TRACE: trace2 } })).code).toBe(0);
      await expectClean(s, bridge);
      // The masquerade rules of both families are listed and removed by one nft process (expectClean: removed); with
      // iptables(-nft) by rule handle, so no iptables-restore reads POSTROUTING. (Not the first DEL: the first ADD
      // on a host also made ip6tables' POSTROUTING, between its chain and its jump, and that DEL fell back.)
      if (!IS_REFERENCE) {
        const spawned = readFileSync(trace2, 'utf8').split('\n');
        const nfts = spawned.filter((l) => /^\d+ms (flock .* )?nft /.test(l));
        expect(nfts).toEqual([expect.stringMatching(/^\d+ms nft -a -i -> 0 \(done; its exit not awaited\)/)]);
        expect(spawned.filter((l) => /^\d+ms \S*iptables/.test(l))).toEqual([]);
      }
    });
  });

  test('DEL after the netns was deleted leaves nothing (with and without prevResult)', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns, result } = await setup(s, backend);
      await s.exec('ip', ['netns', 'del', ns]);
      const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns);
      expect(r.code).toBe(0);
      await expectClean(s, bridge);

      const ns2 = await s.container();
      const r2 = await call(s, 'ADD', conf, 'life2', ns2);
      expect(r2.code).toBe(0);
      await s.exec('ip', ['netns', 'del', ns2]);
      // No prevResult and no netns path, as containerd sends when a task exits.
      const del2 = await call(s, 'DEL', conf, 'life2', undefined);
      expect(del2.code).toBe(0);
      await expectClean(s, bridge);
    });
  });

  test('DEL after the container address was removed leaves nothing', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns, result } = await setup(s, backend);
      for (const ip of result.ips) await s.exec('ip', ['addr', 'del', ip.address, 'dev', 'eth0'], { ns });
      const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns);
      expect(r.code).toBe(0);
      await expectClean(s, bridge);
    });
  });

  test('DEL after the container interface was deleted leaves nothing', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns, result } = await setup(s, backend);
      await s.exec('ip', ['link', 'del', 'eth0'], { ns });
      const r = await call(s, 'DEL', withPrev(conf, result), 'life1', ns);
      expect(r.code).toBe(0);
      await expectClean(s, bridge);
    });
  });

  test('DEL without prevResult while the container is alive finds its rules by name', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns } = await setup(s, backend);
      const r = await call(s, 'DEL', conf, 'life1', ns);
      expect(r.code).toBe(0);
      await expectClean(s, bridge);
    });
  });

  test('DEL under the other ipMasqBackend still removes the rules', async () => {
    await withSandbox(async (s) => {
      const { bridge, conf, ns, result } = await setup(s, backend);
      const other = { ...conf, ipMasqBackend: backend === 'iptables' ? 'nftables' : 'iptables' };
      const r = await call(s, 'DEL', withPrev(other, result), 'life1', ns);
      expect(r.code).toBe(0);
      await expectClean(s, bridge);
    });
  });

  test11('GC removes the rules of attachments that are not listed and keeps the others', async () => {
    await withSandbox(async (s) => {
      const { conf, result } = await setup(s, backend);
      const ns2 = await s.container();
      const r2 = await call(s, 'ADD', conf, 'life2', ns2);
      expect(r2.code).toBe(0);
      const gc = await call(s, 'GC', { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'life1', ifname: 'eth0' }] }, 'unused', undefined);
      expect(gc.stdout).toBe('');
      expect(gc.code).toBe(0);
      const rules = (await natState(s)).join('\n');
      expect(rules).toContain(addrOnly(result.ips[0].address));
      expect(rules).not.toContain(addrOnly(r2.json.ips[0].address));
      expect(rules).not.toContain('life2');
      if (backend === 'nftables') expect(rules).not.toContain(instanceHash('brtest', 'eth0', 'life2').replace('-', ''));
      expect(reservations(s)).toHaveLength(2);
    });
  });

  test11('STATUS succeeds when the backend works', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '192.0.2.0/24', extra: { ipMasq: true, ipMasqBackend: backend } });
      const r = await call(s, 'STATUS', conf, 'unused', undefined);
      expect(r.stdout).toBe('');
      expect(r.code).toBe(0);
    });
  });
});

d('bridge STATUS', () => {
  test11('is 50 when the bridge name is taken by a device that is not a bridge', async () => {
    await withSandbox(async (s) => {
      const name = uniqueName('cdm');
      await s.exec('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
      const r = await call(s, 'STATUS', bridgeConf(s, { bridge: name, v4: '192.0.2.0/24' }), 'unused', undefined);
      expect(r.json).toMatchObject({ code: 50, msg: expect.stringContaining(name) });
    });
  });
});

/**
 * Gateway addresses on an existing bridge: the veth batch lists the bridge's addresses, and the gateway batch
 * runs only when one is missing. Checked through CNI_TS_TRACE (every process the plugin starts) and the
 * bridge's addresses, including a gateway address someone removed between two ADDs.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, netnsPath, uniqueName, withSandbox, type Sandbox } from '../helpers/netns';
import { bridgeConf, cniPath, hostLinks, reservations, withPrev } from './helpers';

const d = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;

/** ADD with a trace; returns the result and the `ip -force -batch` processes it started. */
async function tracedAdd(s: Sandbox, conf: Record<string, unknown>, id: string, ns: string) {
  const trace = join(s.dir, `trace-${id}`);
  const r = await s.plugin('bridge', { command: 'ADD', conf, containerID: id, netns: netnsPath(ns), path: cniPath(s), env: { CNI_TS_TRACE: trace } });
  expect(r.json?.msg).toBeUndefined();
  const spawned = readFileSync(trace, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  rmSync(trace, { force: true });
  return { result: r.json, hostBatches: spawned.filter((l) => /ms ip -force -batch -/.test(l)).length };
}

const bridgeAddrs = async (s: Sandbox, bridge: string) =>
  (await s.exec('ip', ['-o', 'addr', 'show', 'dev', bridge, 'scope', 'global'])).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[3]);

d('bridge gateway addresses', () => {
  test('an ADD onto a bridge that has its gateways starts one host batch; a removed gateway address comes back', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('gbr');
      const conf = bridgeConf(s, { bridge, v4: '198.51.100.0/24', v6: '2001:db8:9a::/64', extra: { isGateway: true } });
      const [a, b, c] = [await s.container(), await s.container(), await s.container()];

      // The first ADD makes the bridge: veth and gateways in the same (after-IPAM) batch.
      const first = await tracedAdd(s, conf, 'gw-a', a);
      expect(first.hostBatches).toBe(1);
      const gateways = ['198.51.100.1/24', '2001:db8:9a::1/64'];
      expect((await bridgeAddrs(s, bridge)).sort()).toEqual(gateways.sort());

      // The bridge has both gateways: only the veth batch.
      const second = await tracedAdd(s, conf, 'gw-b', b);
      expect(second.hostBatches).toBe(1);

      // One gateway address gone: the gateway batch runs again and puts it back.
      await s.exec('ip', ['addr', 'del', '198.51.100.1/24', 'dev', bridge]);
      const third = await tracedAdd(s, conf, 'gw-c', c);
      expect(third.hostBatches).toBe(2);
      expect((await bridgeAddrs(s, bridge)).sort()).toEqual(gateways.sort());
      expect((await s.exec('busybox', ['ping', '-c', '1', '-W', '2', '198.51.100.1'], { ns: c })).code).toBe(0);

      for (const [r, id, ns] of [[first, 'gw-a', a], [second, 'gw-b', b], [third, 'gw-c', c]] as const) {
        const del = await s.plugin('bridge', { command: 'DEL', conf: withPrev(conf, r.result), containerID: id, netns: netnsPath(ns), path: cniPath(s) });
        expect(del.code).toBe(0);
      }
      expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
      expect(reservations(s)).toEqual([]);
    });
  });
});

/**
 * A node can switch between the Go bridge (installed v1.1.1) and ours with containers running: each DELs what
 * the other ADDed, leaving no veth, reservation or masquerade rule.
 */
import { existsSync } from 'node:fs';
import { canUseNetns, IS_REFERENCE, netnsPath, PLUGIN_DIR, uniqueName, withSandbox, type Sandbox } from '../helpers/netns';
import { bridgeConf, hostLinks, natState, reservations, withPrev } from './helpers';

const GO = '/usr/lib/cni';
const d = canUseNetns() && existsSync(`${GO}/bridge`) && !IS_REFERENCE ? describe : describe.skip;

const run = (s: Sandbox, dir: string, command: string, conf: unknown, cid: string, ns: string) =>
  s.plugin('bridge', { command, conf, containerID: cid, netns: netnsPath(ns), ifname: 'eth0', path: dir }, dir);

d('bridge interop with the Go plugin', () => {
  test.each([
    ['Go ADD, our DEL', GO, PLUGIN_DIR],
    ['our ADD, Go DEL', PLUGIN_DIR, GO],
  ])('%s leaves nothing', async (_name, addDir, delDir) => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { version: '1.0.0', bridge, v4: '203.0.113.0/24', extra: { isDefaultGateway: true, ipMasq: true } });
      const ns = await s.container();
      const add = await run(s, addDir, 'ADD', conf, 'interop1', ns);
      expect(add.json?.msg).toBeUndefined();
      expect(reservations(s)).toHaveLength(1);
      expect(await natState(s)).not.toEqual([]);
      const del = await run(s, delDir, 'DEL', withPrev(conf, add.json), 'interop1', ns);
      expect(del.code).toBe(0);
      expect((await hostLinks(s)).filter((l) => l.startsWith('veth'))).toEqual([]);
      expect(reservations(s)).toEqual([]);
      expect(await natState(s)).toEqual([]);
    });
  });
});

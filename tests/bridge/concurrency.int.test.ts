/** Many ADDs racing to create the same bridge and its gateway address all succeed. */
import { canUseNetns, uniqueName, withSandbox } from '../helpers/netns';
import { bridgeConf, call, hostLinks, reservations } from './helpers';

const d = canUseNetns() ? describe : describe.skip;

d('bridge concurrency', () => {
  test('20 parallel ADDs onto a bridge that does not exist yet', async () => {
    await withSandbox(async (s) => {
      const bridge = uniqueName('cbr');
      const conf = bridgeConf(s, { bridge, v4: '203.0.113.0/24', v6: '2001:db8:b3::/64', extra: { isGateway: true, ipMasq: true } });
      const nss = await Promise.all(Array.from({ length: 20 }, () => s.container()));
      expect(await hostLinks(s)).not.toContain(bridge);
      const results = await Promise.all(nss.map((ns, i) => call(s, 'ADD', conf, `race${i}`, ns)));
      for (const r of results) {
        expect(r.json?.msg).toBeUndefined();
        expect(r.code).toBe(0);
      }
      const addrs = results.map((r) => r.json.ips[0].address);
      expect(new Set(addrs).size).toBe(20);
      const links = await hostLinks(s);
      expect(links.filter((l) => l === bridge)).toHaveLength(1);
      expect(links.filter((l) => l.startsWith('veth'))).toHaveLength(20);
      const br = (await s.exec('ip', ['-o', 'addr', 'show', 'dev', bridge])).stdout;
      expect(br.match(/inet 203\.0\.113\.1\/24/g)).toHaveLength(1);
      expect(reservations(s)).toHaveLength(40);
    });
  });
});

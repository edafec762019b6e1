/**
 * Churn: 1,000 ADD/DEL cycles of the bridge + host-local + portmap chain, 4 at a time. No address is ever held by
 * two live containers (every ADD result is checked against the live set), and afterwards nothing has grown:
 * links, rules, set elements, reservations, conntrack entries, stray processes. CNI_CHURN_CYCLES overrides the count.
 */
import { join } from 'node:path';
import { chainAdd, chainDel, hostState, type ChainNet } from '../helpers/chain';
import { uniqueName, withSandbox, must } from '../helpers/netns';

const CYCLES = Number(process.env.CNI_CHURN_CYCLES ?? 1000);
const PARALLEL = 4;

test.each(['iptables', 'nftables'] as const)(`${CYCLES} ADD/DEL cycles, ${PARALLEL} at a time (%s): no duplicate address, nothing grows`, async (backend) => {
  const started = Date.now();
  await withSandbox(async (s) => {
    const n: ChainNet = { name: uniqueName('cn'), bridge: uniqueName('cb'), subnet: '192.0.2.0/24', dataDir: join(s.dir, 'data'), backend };
    // Warm-up cycle so shared top-level chains exist in the baseline.
    const warm = await s.container();
    await chainDel(s, n, 'warm', warm, 19000, await chainAdd(s, n, 'warm', warm, 19000));
    const baseline = await hostState(s, n);

    const live = new Map<string, string>();
    const duplicates: string[] = [];
    let next = 0;
    const worker = async (w: number) => {
      // Each worker reuses one container namespace: the netns is the runtime's, not ours to churn.
      const ctr = await s.container(`cw${w}`);
      while (next < CYCLES) {
        const i = next++;
        const id = `churn-${i}`;
        const port = 20000 + w;
        const result = await chainAdd(s, n, id, ctr, port);
        for (const ip of result.ips ?? []) {
          const holder = live.get(ip.address);
          if (holder) duplicates.push(`${ip.address} held by ${holder} and ${id}`);
          live.set(ip.address, id);
        }
        // Hold it a moment, as a container would, so other workers' ADDs overlap with it.
        await new Promise((r) => setTimeout(r, 5));
        // Released from the live set when DEL starts: from then on the address may legitimately be handed out again.
        for (const ip of result.ips ?? []) live.delete(ip.address);
        await chainDel(s, n, id, ctr, port, result);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, (_, w) => worker(w)));
    process.stderr.write(`churn ${backend}: ${CYCLES} cycles in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

    expect(duplicates).toEqual([]);
    expect(await hostState(s, n)).toEqual(baseline);
    // Conntrack entries of ours: anything from the containers' subnet or to our host ports (IPv6 neighbour
    // discovery and the bridge's IGMP joins come and go and are not ours).
    const ours = (await s.exec('conntrack', ['-L'])).stdout.split('\n').filter((l) => (l.includes('192.0.2.') && !/dst=(22[4-9]|23\d)\./.test(l)) || / dport=2000\d /.test(l));
    expect(ours).toEqual([]);
    expect((await must('sh', ['-c', `ps -eo args | grep -E '^(flock|cat)( |$)' | grep -cF '${n.dataDir}' || true`])).trim()).toBe('0');
  });
}, 1_200_000);

/**
 * Flushes UDP conntrack entries of mapped host ports. A UDP "connection" lives as long as packets keep
 * coming, so without this a client that keeps its source port stays bound to the old container (or to no
 * NAT at all) after the port is handed over. Exit status 1 from conntrack means nothing matched.
 */
import { run } from '../../lib/exec';
import type { Family } from '../../lib/ip';

export async function flushUdp(entries: ReadonlyArray<{ family: Family; port: number }>, warn: (msg: string) => void): Promise<void> {
  await Promise.all(
    entries.map(async ({ family, port }) => {
      const args = ['-D', '-f', family === 4 ? 'ipv4' : 'ipv6', '-p', 'udp', '--dport', String(port)];
      try {
        const r = await run('conntrack', args, { allowFailure: true });
        if (r.code > 1) warn(`conntrack ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
      } catch (e) {
        warn(`conntrack ${args.join(' ')}: ${(e as Error).message}`);
      }
    }),
  );
}

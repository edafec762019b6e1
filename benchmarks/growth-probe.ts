/**
 * Where does ADD time grow with the number of attached containers? Attaches N containers with ours, then
 * traces (CNI_TS_TRACE) a few chain ADDs and prints each process with its duration. Usage:
 *   node build/run-ts.mjs benchmarks/growth-probe.ts [N] [iptables|nftables]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainAdd, sh, type Impl } from './chain';
import { inHost } from './host';

const N = Number(process.argv[2] ?? 500);
const backend = (process.argv[3] ?? 'iptables') as 'iptables' | 'nftables';
const root = join(__dirname, '..', '..', '..');
const host = process.env.CNI_BENCH_HOST_NS ?? `grow-${process.pid % 10000}`;
const inside = inHost(host);
const work = inside ? mkdtempSync(join(tmpdir(), 'cni-grow-')) : '';
const nss: string[] = [];
const impl: Impl = { name: 'ours', dir: join(root, 'dist'), backend, bridge: 'gb0', subnet: '198.18.0.0/22', network: 'grow', dataDir: join(work, 'data'), portBase: 20000, trace: join(work, 'trace') };

async function main() {
  let seq = 0;
  const attach = async () => {
    const ns = `gc${process.pid % 10000}-${++seq}`;
    sh('ip', ['netns', 'add', ns]);
    nss.push(ns);
    const t = performance.now();
    await chainAdd(undefined, impl, { id: `g${seq}`, netns: `/var/run/netns/${ns}`, hostPort: 20000 + seq });
    return performance.now() - t;
  };
  const probe = async (label: string) => {
    for (let i = 0; i < 3; i++) {
      writeFileSync(impl.trace!, '');
      const ms = await attach();
      if (i === 2) console.log(`${label}: chain ADD ${ms.toFixed(1)} ms\n${readFileSync(impl.trace!, 'utf8').replace(/\\n.*? ->/g, ' ->')}`);
    }
  };
  await probe('1 attached');
  while (seq < N) await Promise.all([attach(), attach(), attach(), attach()]);
  await probe(`${N} attached`);
}
if (inside) {
  main()
    .catch((e) => console.error(e))
    .finally(() => {
      for (const n of nss.reverse()) sh('ip', ['netns', 'del', n]);
      rmSync(work, { recursive: true, force: true });
    });
}

/**
 * Where does a chain ADD's time grow with the number of attached containers? Attaches N containers with ours,
 * then traces (CNI_TS_TRACE) a few chain ADDs and prints each step: the processes with their durations and when
 * they started, and our own steps ("#" lines), in ms from the plugin's start. With `busy` for N: one container
 * attached, the benchmark's 20,000 kube-proxy rules added, then ROUNDS (3) chain ADDs and DELs traced. After the
 * ADDs at N attached, one chain DEL is traced too. Usage:
 *   node build/run-ts.mjs benchmarks/growth-probe.ts [N|busy] [iptables|nftables]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainAdd, chainDel, lastMs, sh, type Impl } from './chain';
import { Host } from './host';
import { kubeProxyRules } from './kube-proxy';

const BUSY = process.argv[2] === 'busy';
const N = BUSY ? 1 : Number(process.argv[2] ?? 500);
const backend = (process.argv[3] ?? 'iptables') as 'iptables' | 'nftables';
const root = join(__dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'cni-grow-'));
const host = Host.create(`grow-${process.pid % 10000}`);
const nss: string[] = [];
const impl: Impl = { name: 'ours', dir: join(root, 'dist'), backend, bridge: 'gb0', subnet: '198.18.0.0/22', network: 'grow', dataDir: join(work, 'data'), portBase: 20000, trace: join(work, 'trace'), host };

async function main() {
  let seq = 0;
  const attach = async () => {
    const ns = `gc${process.pid % 10000}-${++seq}`;
    sh('ip', ['netns', 'add', ns]);
    nss.push(ns);
    const a = { id: `g${seq}`, netns: `/var/run/netns/${ns}`, hostPort: 20000 + seq };
    const result = await chainAdd(impl, a);
    return { ms: lastMs['bridge ADD']! + lastMs['portmap ADD']!, a, result };
  };
  const probe = async (label: string, traceDel: boolean) => {
    for (let i = 0; i < 3; i++) {
      writeFileSync(impl.trace!, '');
      const { ms, a, result } = await attach();
      if (i < 2) continue;
      console.log(`${label}: chain ADD ${ms.toFixed(1)} ms\n${readFileSync(impl.trace!, 'utf8').replace(/\\n.*? ->/g, ' ->')}`);
      if (!traceDel) continue;
      writeFileSync(impl.trace!, '');
      await chainDel(impl, a, result);
      const del = lastMs['portmap DEL']! + lastMs['bridge DEL']!;
      console.log(`${label}: chain DEL ${del.toFixed(1)} ms\n${readFileSync(impl.trace!, 'utf8').replace(/\\n.*? ->/g, ' ->')}`);
    }
  };
  if (BUSY) {
    await attach();
    await host.sh('iptables-restore', ['--noflush'], kubeProxyRules(20000));
    const rounds = Number(process.env.ROUNDS ?? 3);
    for (let i = 0; i < rounds; i++) {
      const a = { id: `b${i}`, netns: `/var/run/netns/gc${process.pid % 10000}-b${i}`, hostPort: 21000 + i };
      sh('ip', ['netns', 'add', `gc${process.pid % 10000}-b${i}`]);
      nss.push(`gc${process.pid % 10000}-b${i}`);
      writeFileSync(impl.trace!, '');
      const result = await chainAdd(impl, a);
      const add = lastMs['bridge ADD']! + lastMs['portmap ADD']!;
      const addTrace = readFileSync(impl.trace!, 'utf8');
      writeFileSync(impl.trace!, '');
      await chainDel(impl, a, result);
      const del = lastMs['portmap DEL']! + lastMs['bridge DEL']!;
      // Every round's DEL (the first rounds after the rules went in can be the slow ones), the last round's ADD.
      if (i === rounds - 1) console.log(`busy: chain ADD ${add.toFixed(1)} ms\n${addTrace}`);
      console.log(`busy round ${i + 1}: chain DEL ${del.toFixed(1)} ms\n${readFileSync(impl.trace!, 'utf8')}`);
    }
    return;
  }
  await probe('1 attached', true);
  while (seq < N) await Promise.all([attach(), attach(), attach(), attach()]);
  await probe(`${N} attached`, true);
}
main()
  .catch((e) => console.error(e))
  .finally(() => {
    for (const n of nss.reverse()) sh('ip', ['netns', 'del', n]);
    host.remove();
    rmSync(work, { recursive: true, force: true });
  });

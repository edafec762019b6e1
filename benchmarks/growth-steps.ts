/**
 * What grows with the number of attached containers, step by step: ours at N attached and ours at 1, each in a
 * host of its own, interleaved for ROUNDS rounds of one chain ADD and DEL, every call traced (CNI_TS_TRACE). Prints
 * the median of each plugin's time and of each traced step (a process's duration and start, the plugin's own "#"
 * notes) at N and at 1, and the difference. Usage:
 *   node build/run-ts.mjs benchmarks/growth-steps.ts [N=500|busy] [ROUNDS=21] [iptables|nftables]
 * With `busy` for N: one container attached and the benchmark's 20,000 kube-proxy rules in that host, against a
 * host with one container and no such rules.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainAdd, chainDel, lastMs, sh, type Impl } from './chain';
import { Host } from './host';
import { kubeProxyRules } from './kube-proxy';
import { median } from './stats';

// "busy": one container attached and the benchmark's 20,000 kube-proxy rules in that host, against a host without.
const BUSY = process.argv[2] === 'busy';
const N = BUSY ? 1 : Number(process.argv[2] ?? 500);
const LABEL = BUSY ? 'busy' : String(N);
const ROUNDS = Number(process.argv[3] ?? 21);
const BACKEND = (process.argv[4] ?? 'iptables') as 'iptables' | 'nftables';
const tag = (process.pid % 46656).toString(36);
const root = join(__dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'cni-steps-'));
const namespaces: string[] = [];
const hosts: Host[] = [];
let seq = 0;

function population(name: string, subnet: string, size: number) {
  const host = Host.create(`gs${tag}-${name}`);
  hosts.push(host);
  const impl: Impl = { name, dir: join(root, 'dist'), backend: BACKEND, bridge: `gs${tag}${name}`, subnet, network: `gs${tag}${name}`, dataDir: join(work, name), portBase: 20000, host, trace: join(work, `trace-${name}`) };
  const fresh = () => {
    const ns = `gs${tag}-${++seq}`;
    sh('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    return { ns, a: { id: `gs-${seq}`, netns: `/var/run/netns/${ns}`, hostPort: 20000 + seq } };
  };
  return { impl, fresh, size };
}

type Samples = Record<string, number[]>;
/** Trace lines into samples: "<plugin>: <note>" (ms from start), "<plugin>: <cmd> dur" and "... start". */
function parseTrace(trace: string, into: Samples): void {
  let plugin = '';
  for (const l of trace.split('\n')) {
    if (l.startsWith('== ')) plugin = l.slice(3);
    const note = /^# (.*?) at \+(\d+) ms/.exec(l);
    if (note) (into[`${plugin}: ${note[1]!.replace(plugin, '').trim()}`] ??= []).push(Number(note[2]));
    const proc = /^(\d+)ms (\S+).* \(from \+(\d+) ms\)$/.exec(l);
    if (proc) {
      (into[`${plugin}: ${proc[2]} dur`] ??= []).push(Number(proc[1]));
      (into[`${plugin}: ${proc[2]} start`] ??= []).push(Number(proc[3]));
    }
  }
}

async function main(): Promise<void> {
  const pops = [population('n', '198.18.0.0/22', N), population('one', '198.18.8.0/22', 1)];
  for (const p of pops) {
    for (let k = 0; k < p.size; k += 4) {
      await Promise.all(Array.from({ length: Math.min(4, p.size - k) }, () => chainAdd(p.impl, p.fresh().a)));
    }
  }
  if (BUSY) await pops[0]!.impl.host.sh('iptables-restore', ['--noflush'], kubeProxyRules(20000));
  const samples: Record<string, Samples> = { n: {}, one: {} };
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of r % 2 ? [...pops].reverse() : pops) {
      const { ns, a } = p.fresh();
      writeFileSync(p.impl.trace!, '');
      const result = await chainAdd(p.impl, a);
      await chainDel(p.impl, a, result);
      const s = samples[p.impl.name]!;
      for (const k of ['bridge ADD', 'portmap ADD', 'portmap DEL', 'bridge DEL']) (s[k] ??= []).push(lastMs[k]!);
      parseTrace(readFileSync(p.impl.trace!, 'utf8'), s);
      sh('ip', ['netns', 'del', ns]);
    }
  }
  console.log(`ours (${BACKEND}) ${BUSY ? 'on the busy node (20,000 kube-proxy rules) and on an idle one' : `at ${N} attached and at 1`}, ${ROUNDS} interleaved rounds, medians in ms\n`);
  for (const k of Object.keys(samples.n!)) {
    const at = samples.n![k]!;
    const one = samples.one![k];
    if (!one) continue;
    console.log(`${k.padEnd(56)} @${LABEL} ${median(at).toFixed(1).padStart(6)}   @1 ${median(one).toFixed(1).padStart(6)}   ${(median(at) - median(one)).toFixed(1).padStart(5)}`);
  }
}

main()
  .catch((e) => console.error(e))
  .finally(() => {
    for (const n of namespaces) {
      try {
        sh('ip', ['netns', 'del', n]);
      } catch {
        // already gone
      }
    }
    for (const h of hosts) h.remove();
    rmSync(work, { recursive: true, force: true });
  });

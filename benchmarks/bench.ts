/**
 * `npm run bench`: the bridge + host-local + portmap chain (ADD then DEL of one container with one TCP port
 * mapping), ours (both firewall backends) against the Go reference in /usr/lib/cni, interleaved in one run, in
 * throwaway namespaces. Scenarios: idle; 200 and 500 containers attached; 20,000 kube-proxy-style NAT rules;
 * 50 parallel ADDs; host-local ADD in a 99%-full /16; VERSION against `node -e 0`. Prints a table of medians
 * and ratios ours/reference, the processes each of our commands spawns, and writes everything to a JSON file.
 * The attached scenarios also measure ours on hosts kept at 1 attached container, in the same rounds ("@1"),
 * for ours at N against ours at 1.
 *
 * Options: --rounds N (default 21; the busy node takes at most 5, ours 3 times in each; the 50 parallel ADDs
 *          --parallel-rounds, default 7),
 *          --only a,b (scenario names), --json FILE (default bench-results.json), --attached 200,500,
 *          --busy-rules 20000.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainAdd, chainDel, lastMs, sh, type Attach, type Impl } from './chain';
import { Host } from './host';
import { kubeProxyRules, removeKubeProxyRules } from './kube-proxy';
import { median, table, timeRun } from './stats';

const root = join(__dirname, '..', '..', '..');
const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : def;
};
// A round of one chain costs well under a second, and the ratios the issue asks for differ from their goals by
// less than 7 rounds' medians moved between runs (ours at 500 against ours at 1: 1.07-1.29 in one day's runs).
const ROUNDS = Number(opt('rounds', '21'));
const PARALLEL_ROUNDS = Math.min(ROUNDS, Number(opt('parallel-rounds', '7')));
const ONLY = opt('only', '').split(',').filter(Boolean);
const JSON_OUT = opt('json', join(root, 'bench-results.json'));
const ATTACHED = opt('attached', '200,500').split(',').map(Number);
const BUSY_RULES = Number(opt('busy-rules', '20000'));
const REF_DIR = '/usr/lib/cni';
const run = (name: string) => !ONLY.length || ONLY.includes(name);

const tag = (process.pid % 46656).toString(36);
const work = mkdtempSync(join(tmpdir(), 'cni-bench-'));
const namespaces = new Set<string>();
const hosts: Host[] = [];

function addNs(name: string): string {
  sh('ip', ['netns', 'add', name]);
  namespaces.add(name);
  return `/var/run/netns/${name}`;
}
function delNs(name: string): void {
  try {
    sh('ip', ['netns', 'del', name]);
  } catch {
    // already gone
  }
  namespaces.delete(name);
}
function cleanup(): void {
  for (const n of [...namespaces]) delNs(n);
  for (const h of hosts) h.remove();
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const ours = join(root, 'dist');
// Each implementation in a host of its own (host.ts), as on a node that runs one of them.
const host = (name: string) => {
  const h = Host.create(`bench-${tag}-${name}`);
  hosts.push(h);
  return h;
};
const haveRef = existsSync(join(REF_DIR, 'bridge'));
const allImpls: Impl[] = [
  { name: 'ours-iptables', dir: ours, backend: 'iptables', bridge: `bbi${tag}`, subnet: '198.18.0.0/22', network: `bi${tag}`, dataDir: join(work, 'oi'), portBase: 20000, trace: join(work, 'trace-oi'), host: host('oi') },
  { name: 'ours-nftables', dir: ours, backend: 'nftables', bridge: `bbn${tag}`, subnet: '198.18.4.0/22', network: `bn${tag}`, dataDir: join(work, 'on'), portBase: 30000, trace: join(work, 'trace-on'), host: host('on') },
  ...(haveRef ? [{ name: 'reference', dir: REF_DIR, bridge: `bbr${tag}`, subnet: '198.18.8.0/22', network: `br${tag}`, dataDir: join(work, 'ref'), portBase: 40000, host: host('ref') }] : []),
];
const impls = allImpls;
const ref = impls.find((i) => i.name === 'reference');
/**
 * Ours again, each in a host that stays at 1 attached container, measured in the same rounds as the attached
 * scenarios: "ours at N against ours at 1" then compares samples taken side by side, not two scenarios minutes
 * apart (this machine's speed drifts by 30% between them).
 */
const atOne: Impl[] = [
  { name: 'ours-iptables @1', dir: ours, backend: 'iptables', bridge: `bb1i${tag}`, subnet: '198.18.12.0/22', network: `b1i${tag}`, dataDir: join(work, 'oi1'), portBase: 2000, host: host('oi1') },
  { name: 'ours-nftables @1', dir: ours, backend: 'nftables', bridge: `bb1n${tag}`, subnet: '198.18.16.0/22', network: `b1n${tag}`, dataDir: join(work, 'on1'), portBase: 11000, host: host('on1') },
];

let seq = 0;
function newAttach(impl: Impl): Attach & { ns: string } {
  seq++;
  const ns = `bc${tag}-${seq}`;
  return { id: `bench-${tag}-${seq}`, ns, netns: addNs(ns), hostPort: impl.portBase + (seq % 9000) };
}

interface Row {
  scenario: string;
  impl: string;
  add: number[];
  del: number[];
  /** Each plugin's own time per round ("bridge ADD", "portmap DEL", ...), for what the chain's time is made of. */
  plugins: Record<string, number[]>;
}
const rows: Row[] = [];
const extra: Record<string, unknown> = {};

/** `list` starting at its `r`-th element (mod its length), for rounds that begin with a different implementation each. */
const rotated = <T>(list: T[], r: number) => [...list.slice(r % list.length), ...list.slice(0, r % list.length)];

/**
 * Interleaved: each round runs every implementation once, ADD then DEL of a fresh container, starting one
 * implementation later than the round before, so that none always runs right after the same other one (whose
 * deleted namespace the kernel may still be cleaning up).
 */
async function measure(scenario: string, rounds: number, only: Impl[] = impls, oursPerRound = 1): Promise<void> {
  const byImpl = new Map<string, Row>(only.map((i) => [i.name, { scenario, impl: i.name, add: [], del: [], plugins: {} }]));
  for (let r = 0; r < rounds; r++) {
    for (const impl of rotated(only, r).flatMap((i) => Array<Impl>(i === ref ? 1 : oursPerRound).fill(i))) {
      const a = newAttach(impl);
      // The plugins' own times, as the agent in their host measured them.
      const result = await chainAdd(impl, a);
      const add = lastMs['bridge ADD']! + lastMs['portmap ADD']!;
      await chainDel(impl, a, result);
      const del = lastMs['portmap DEL']! + lastMs['bridge DEL']!;
      delNs(a.ns);
      const row = byImpl.get(impl.name)!;
      row.add.push(add);
      row.del.push(del);
      for (const k of ['bridge ADD', 'portmap ADD', 'portmap DEL', 'bridge DEL']) (row.plugins[k] ??= []).push(lastMs[k]!);
    }
  }
  rows.push(...byImpl.values());
  printRows(rows.filter((r) => r.scenario === scenario));
}

const attached = new Map<string, Array<{ a: Attach & { ns: string }; result: unknown }>>();
async function attachUpTo(n: number, which: Impl[] = impls): Promise<void> {
  for (const impl of which) {
    const list = attached.get(impl.name) ?? [];
    attached.set(impl.name, list);
    // A few at a time: the point is the state they leave, not how fast they got there.
    while (list.length < n) {
      const batch = Array.from({ length: Math.min(4, n - list.length) }, () => newAttach(impl));
      const results = await Promise.all(batch.map((a) => chainAdd(impl, a)));
      batch.forEach((a, i) => list.push({ a, result: results[i] }));
    }
  }
}
async function detachAll(): Promise<void> {
  for (const impl of [...impls, ...atOne]) {
    for (const { a, result } of attached.get(impl.name) ?? []) {
      await chainDel(impl, a, result);
      delNs(a.ns);
    }
    attached.set(impl.name, []);
  }
}

function printRows(rs: Row[]): void {
  const refRow = (s: string) => rows.find((r) => r.scenario === s && r.impl === 'reference');
  console.log(
    table(
      rs.map((r) => {
        const rr = refRow(r.scenario);
        return {
          scenario: r.scenario,
          impl: r.impl,
          'ADD ms': median(r.add),
          'DEL ms': median(r.del),
          'ADD/ref': rr && r.impl !== 'reference' ? median(r.add) / median(rr.add) : '',
          'DEL/ref': rr && r.impl !== 'reference' ? median(r.del) / median(rr.del) : '',
        };
      }),
    ) + '\n',
  );
}

function printPlugins(rs: Row[]): void {
  const refRow = (s: string) => rows.find((r) => r.scenario === s && r.impl === 'reference');
  const cell = (r: Row, k: string) => {
    const m = median(r.plugins[k] ?? []);
    const rr = refRow(r.scenario);
    return rr && r.impl !== 'reference' ? `${m.toFixed(1)} (${(m / median(rr.plugins[k] ?? [])).toFixed(2)})` : m.toFixed(1);
  };
  console.log(
    table(
      rs.map((r) => ({
        scenario: r.scenario,
        impl: r.impl,
        'bridge ADD': cell(r, 'bridge ADD'),
        'portmap ADD': cell(r, 'portmap ADD'),
        'portmap DEL': cell(r, 'portmap DEL'),
        'bridge DEL': cell(r, 'bridge DEL'),
      })),
    ) + '\n',
  );
}

function countSpawns(trace: string): Record<string, number> {
  const counts: Record<string, number[]> = {};
  let cur = '';
  let n = 0;
  const flush = () => {
    if (cur) (counts[cur] ??= []).push(n);
  };
  for (const line of readFileSync(trace, 'utf8').split('\n')) {
    if (line.startsWith('== ')) {
      flush();
      cur = line.slice(3);
      n = 0;
    } else if (line.trim() && !line.startsWith('#')) n++;
  }
  flush();
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, median(v)]));
}

function fillHostLocal(dir: string, network: string): void {
  // 198.18.0.0/16: 65,533 usable addresses (.0.1 is the gateway). Reserve 99%, the free 1% spread at random.
  const netDir = join(dir, network);
  mkdirSync(netDir, { recursive: true });
  let rnd = 12345;
  const rand = () => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 2; i < 65535; i++) {
    if (rand() < 0.01) continue;
    writeFileSync(join(netDir, `198.18.${i >> 8}.${i & 255}`), `fill-${i}\r\neth0`, { mode: 0o600 });
  }
  writeFileSync(join(netDir, 'last_reserved_ip.0'), '198.18.0.2');
}

async function main(): Promise<void> {
  console.log(`benchmark: ${impls.map((i) => i.name).join(', ')}, each in a host namespace of its own (${hosts.map((h) => h.name).join(', ')}); ${ROUNDS} interleaved rounds per scenario\n`);
  for (const i of impls) if (i.trace) writeFileSync(i.trace, '');

  if (run('idle')) {
    await attachUpTo(1);
    await measure('idle (1 attached)', ROUNDS);
    const spawns = Object.fromEntries(impls.filter((i) => i.trace).map((i) => [i.name, countSpawns(i.trace!)]));
    extra.processesPerCommand = spawns;
    console.log('processes spawned per command (median):', JSON.stringify(spawns), '\n');
  }
  const growth: Record<string, Record<string, number>> = {};
  for (const n of ATTACHED) {
    if (!run(`attached-${n}`)) continue;
    await attachUpTo(n);
    await attachUpTo(1, atOne);
    const scenario = `${n} attached`;
    await measure(scenario, ROUNDS, [...impls, ...atOne]);
    // Ours at N against ours at 1, from the same rounds.
    const row = (name: string) => rows.find((r) => r.scenario === scenario && r.impl === name);
    for (const one of atOne) {
      const at = row(one.name.replace(' @1', ''));
      const base = row(one.name);
      if (!at || !base) continue;
      (growth[scenario] ??= {})[`${at.impl} ADD`] = median(at.add) / median(base.add);
      growth[scenario]![`${at.impl} DEL`] = median(at.del) / median(base.del);
    }
    console.log(`ours at ${n} attached against ours at 1 in the same rounds:`, JSON.stringify(growth[scenario], (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(2)) : v)), '\n');
  }
  if (Object.keys(growth).length) extra.oursAtNVersusAt1 = growth;
  await detachAll();

  if (run('busy')) {
    const rules = kubeProxyRules(BUSY_RULES);
    for (const i of impls) await i.host.sh('iptables-restore', ['--noflush'], rules);
    // The reference takes ~19-27 s per ADD here; fewer rounds keep the run bounded, and ours runs 3 times in each
    // of them (its samples spread over the ~2 minutes): with 3 rounds, one slow minute of this shared machine (our
    // plugins' start-up +12 ms each) made ours-nftables' DEL median 0.55x the reference's in one run, 0.30-0.40x in
    // the others.
    await measure(`busy (${BUSY_RULES} NAT rules)`, Math.min(ROUNDS, 5), impls, 3);
    // All of it goes again, so that later scenarios run on an idle host (left in place, the 20,000 chains made
    // the 50 parallel ADDs a busy-node scenario: ~15 minutes for the reference).
    for (const i of impls) await i.host.sh('iptables-restore', ['--noflush'], removeKubeProxyRules(BUSY_RULES));
  }

  if (run('parallel')) {
    // One wall time is one sample of a noisy machine: as many rounds as the other scenarios, interleaved and
    // rotated, and the median of each.
    const par: Record<string, { wallMs: number; samples: number[]; failures: number; duplicates: number; errors: string[] }> = {};
    for (let r = 0; r < PARALLEL_ROUNDS; r++) {
      for (const impl of rotated(impls, r)) {
        const batch = Array.from({ length: 50 }, () => newAttach(impl));
        const t = performance.now();
        const settled = await Promise.allSettled(batch.map((a) => chainAdd(impl, a)));
        const wallMs = performance.now() - t;
        const ips = settled.flatMap((s) => (s.status === 'fulfilled' ? (s.value.ips ?? []).map((x: { address: string }) => x.address) : []));
        const errors = settled.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error).message ?? s.reason).slice(0, 600)] : []));
        const p = (par[impl.name] ??= { wallMs: 0, samples: [], failures: 0, duplicates: 0, errors: [] });
        p.samples.push(wallMs);
        p.wallMs = median(p.samples);
        p.failures += errors.length;
        p.duplicates += ips.length - new Set(ips).size;
        p.errors.push(...errors);
        for (const e of errors.slice(0, 3)) console.log(`${impl.name}: a parallel ADD failed: ${e}`);
        await Promise.all(batch.map((a, i) => chainDel(impl, a, settled[i]!.status === 'fulfilled' ? (settled[i] as PromiseFulfilledResult<unknown>).value : undefined).catch(() => undefined)));
        batch.forEach((a) => delNs(a.ns));
      }
    }
    extra.parallel50 = par;
    console.log(table(Object.entries(par).map(([impl, p]) => ({ scenario: `50 parallel ADDs (median of ${PARALLEL_ROUNDS})`, impl, 'wall ms': p.wallMs, failures: p.failures, duplicates: p.duplicates, 'wall/ref': par.reference ? p.wallMs / par.reference.wallMs : '' }))) + '\n');
  }

  if (run('hostlocal')) {
    const hl: Record<string, number[]> = {};
    const variants = impls.filter((i) => i.name !== 'ours-nftables');
    for (const impl of variants) fillHostLocal(join(work, `hl-${impl.name}`), 'full');
    for (let r = 0; r < ROUNDS; r++) {
      for (const impl of variants) {
        const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'full', type: 'host-local', ranges: [[{ subnet: '198.18.0.0/16' }]], dataDir: join(work, `hl-${impl.name}`) });
        const ipamConf = JSON.stringify({ cniVersion: '1.0.0', name: 'full', type: 'x', ipam: JSON.parse(conf) });
        const env = { PATH: process.env.PATH, CNI_CONTAINERID: `hl-${r}`, CNI_NETNS: '/dev/null', CNI_IFNAME: 'eth0', CNI_PATH: impl.dir };
        const add = timeRun(join(impl.dir, 'host-local'), [], { env: { ...env, CNI_COMMAND: 'ADD' }, input: ipamConf });
        timeRun(join(impl.dir, 'host-local'), [], { env: { ...env, CNI_COMMAND: 'DEL' }, input: ipamConf });
        (hl[impl.name === 'reference' ? 'reference' : 'ours'] ??= []).push(add);
      }
    }
    extra.hostLocal99 = hl;
    console.log(table(Object.entries(hl).map(([impl, xs]) => ({ scenario: 'host-local ADD, 99%-full /16', impl, 'ADD ms': median(xs), 'ADD/ref': hl.reference ? median(xs) / median(hl.reference) : '' }))) + '\n');
  }

  if (run('version')) {
    const v: Record<string, number[]> = { ours: [], 'node -e 0': [], reference: [] };
    const env = { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' };
    for (let r = 0; r < ROUNDS * 4; r++) {
      v.ours!.push(timeRun(join(ours, 'bridge'), [], { env, input: '' }));
      v['node -e 0']!.push(timeRun(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH } }));
      if (ref) v.reference!.push(timeRun(join(REF_DIR, 'bridge'), [], { env, input: '' }));
    }
    extra.version = v;
    console.log(table(Object.entries(v).filter(([, xs]) => xs.length).map(([impl, xs]) => ({ scenario: 'VERSION', impl, 'median ms': median(xs), 'vs node -e 0': median(xs) / median(v['node -e 0']!) }))) + '\n');
  }

  console.log('summary (median ms; ratio ours/reference):\n');
  printRows(rows);
  console.log('each plugin on its own (median ms; ratio ours/reference):\n');
  printPlugins(rows);
  writeFileSync(JSON_OUT, JSON.stringify({ machine: { cpus: cpus().length, kernel: release(), node: process.version }, rounds: ROUNDS, rows, ...extra }, null, 2));
  console.log(`samples written to ${JSON_OUT}`);
}

main()
  .catch((e) => {
    console.error(`benchmark failed: ${(e as Error).message}`);
    process.exitCode = 1;
  })
  .finally(cleanup);

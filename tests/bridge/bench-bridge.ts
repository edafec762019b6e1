/**
 * ADD/DEL timing of our bridge against the Go reference, interleaved (ours, Go, ours, Go...) so machine noise hits
 * both alike. Run as root: `node build/run-ts.mjs tests/bridge/bench-bridge.ts [iterations]`. Everything happens in
 * throwaway namespaces that are removed at the end. Prints medians and ratios per scenario.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
const OURS = join(ROOT, 'dist');
const GO = '/usr/lib/cni';
const N = Number(process.argv[2] ?? 30);
const tag = `bb${process.pid % 10000}`;
const hostNs = `${tag}h`;
const dir = mkdtempSync(join(tmpdir(), 'bridge-bench-'));

const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });

function timeRun(bin: string, command: string, conf: object, cid: string, netns: string, path: string): { ms: number; out: string } {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: cid, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: path };
  const t = process.hrtime.bigint();
  const r = spawnSync('ip', ['netns', 'exec', hostNs, bin], { input: JSON.stringify(conf), env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${bin} ${command} failed: ${r.stdout} ${r.stderr}`);
  return { ms, out: r.stdout };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Scenario {
  name: string;
  extra: Record<string, unknown>;
  go: boolean;
  /** DEL as containerd sends it after a task exits: no prevResult, no netns. */
  bareDel?: boolean;
}
const SCENARIOS: Scenario[] = [
  { name: 'gateway, no masquerade', extra: { isDefaultGateway: true }, go: true },
  { name: 'gateway + ipMasq iptables', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: 'iptables' }, go: true },
  { name: 'gateway + ipMasq nftables', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: 'nftables' }, go: false },
  { name: 'gateway + ipMasq iptables, DEL without prevResult or netns', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: 'iptables' }, go: true, bareDel: true },
  { name: 'gateway + ipMasq nftables, DEL without prevResult or netns', extra: { isDefaultGateway: true, ipMasq: true, ipMasqBackend: 'nftables' }, go: false, bareDel: true },
];

/** Process start-up alone (VERSION), the floor under every command. */
function startup(): void {
  const t: Record<string, number[]> = { ours: [], go: [] };
  for (let i = 0; i < N; i++) {
    for (const [impl, bin] of [['ours', join(OURS, 'bridge')], ['go', join(GO, 'bridge')]] as const) {
      const s = process.hrtime.bigint();
      spawnSync(bin, [], { input: '{"cniVersion":"1.0.0"}', env: { CNI_COMMAND: 'VERSION' } });
      t[impl]!.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
  }
  console.log(`start-up (VERSION, n=${N}, medians)\n  ours ${median(t.ours!).toFixed(1)} ms, Go ${median(t.go!).toFixed(1)} ms`);
}

function conf(impl: 'ours' | 'go', s: Scenario, i: number) {
  const octet = impl === 'ours' ? 10 : 20;
  return {
    cniVersion: '1.0.0',
    name: `bench-${impl}-${i}`,
    type: 'bridge',
    bridge: `${tag}${impl[0]}${i}`,
    ...s.extra,
    ipam: { type: 'host-local', dataDir: join(dir, impl), ranges: [[{ subnet: `10.${octet + i}.0.0/16` }], [{ subnet: `fd00:${octet + i}::/64` }]] },
  };
}

function main() {
  sh('ip', ['netns', 'add', hostNs]);
  sh('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
  const made: string[] = [];
  try {
    startup();
    SCENARIOS.forEach((s, si) => {
      const t: Record<string, { add: number[]; del: number[] }> = { ours: { add: [], del: [] }, go: { add: [], del: [] } };
      const impls: Array<'ours' | 'go'> = s.go ? ['ours', 'go'] : ['ours'];
      // One warm-up each: the first ADD creates the bridge.
      for (let it = -1; it < N; it++) {
        const order = it % 2 ? impls : [...impls].reverse();
        for (const impl of order) {
          const ns = `${tag}c${si}${impl[0]}${it + 1}`;
          sh('ip', ['netns', 'add', ns]);
          made.push(ns);
          const c = conf(impl, s, si);
          const bin = join(impl === 'ours' ? OURS : GO, 'bridge');
          const path = impl === 'ours' ? OURS : GO;
          const cid = `bench${it + 1}`;
          const add = timeRun(bin, 'ADD', c, cid, `/var/run/netns/${ns}`, path);
          if (s.bareDel) sh('ip', ['netns', 'del', ns]);
          const del = s.bareDel ? timeRun(bin, 'DEL', c, cid, '', path) : timeRun(bin, 'DEL', { ...c, prevResult: JSON.parse(add.out) }, cid, `/var/run/netns/${ns}`, path);
          if (it >= 0) {
            t[impl]!.add.push(add.ms);
            t[impl]!.del.push(del.ms);
          }
          sh('ip', ['netns', 'del', ns]);
        }
      }
      const o = t.ours!;
      const g = t.go!;
      const line = (what: 'add' | 'del') =>
        `  ${what.toUpperCase()}: ours ${median(o[what]).toFixed(1)} ms` + (s.go ? `, Go ${median(g[what]).toFixed(1)} ms, Go/ours ${(median(g[what]) / median(o[what])).toFixed(2)}x` : '');
      console.log(`${s.name} (n=${N}, medians)\n${line('add')}\n${line('del')}`);
      if (s.bareDel && s.go) {
        const left = sh('ip', ['netns', 'exec', hostNs, 'iptables', '-t', 'nat', '-S', 'POSTROUTING']).stdout.split('\n').filter((l) => l.includes('bench-go')).length;
        console.log(`  masquerade jumps the Go plugin left behind: ${left} of ${N + 1}`);
      }
    });
  } finally {
    for (const ns of made) sh('ip', ['netns', 'del', ns]);
    sh('ip', ['netns', 'del', hostNs]);
    rmSync(dir, { recursive: true, force: true });
  }
}

main();

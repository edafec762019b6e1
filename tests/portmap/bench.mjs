#!/usr/bin/env node
/**
 * portmap ADD/DEL cost at 1 and 500 mapped containers, ours against the Go portmap (iptables; the Go 1.1.1
 * plugin has no nftables backend, so nftables is measured for ours alone), measured side by side, interleaved.
 * Runs in a throwaway network namespace (re-executes itself inside one); containers are fake (prevResult only:
 * portmap never enters the container namespace). Usage: node tests/portmap/bench.mjs [rounds]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OURS = join(ROOT, 'dist', 'portmap');
const GO = '/usr/lib/cni/portmap';
const ROUNDS = Number(process.argv[2] ?? 15);

if (!process.env.PM_BENCH_NS) {
  const ns = `pmbench${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns], { stdio: 'inherit' });
  try {
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, PM_BENCH_NS: ns } });
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
} else {
  const ns = process.env.PM_BENCH_NS;
  const netnsPath = `/var/run/netns/${ns}`;
  const ip4 = (k) => `198.18.${k >> 8}.${k & 255}`;
  const conf = (k, backend) => ({
    cniVersion: '1.0.0',
    name: 'bench',
    type: 'portmap',
    ...(backend ? { backend } : {}),
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort: 20000 + k, containerPort: 80, protocol: 'tcp' }, { hostPort: 40000 + k, containerPort: 53, protocol: 'udp' }] },
    prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: netnsPath }], ips: [{ address: `${ip4(k)}/15`, interface: 0 }] },
  });
  const call = (plugin, command, k, backend, env = {}) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(plugin, [], {
      input: JSON.stringify(conf(k, backend)),
      env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: `bench-${k}`, CNI_NETNS: netnsPath, CNI_IFNAME: 'eth0', CNI_PATH: dirname(plugin), ...env },
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${plugin} ${command} ${k}: ${r.stdout} ${r.stderr}`);
    return ms;
  };
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const spawnsPerCall = (command, k, backend) => {
    const trace = `/tmp/pmbench-trace-${process.pid}`;
    rmSync(trace, { force: true });
    call(OURS, command, k, backend, { CNI_TS_TRACE: trace });
    const lines = readFileSync(trace, 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
    rmSync(trace, { force: true });
    return `${lines.length} [${lines.map((l) => l.replace(/ -.*| --.*/, '')).join(', ')}]`;
  };

  const results = [];
  let populated = { iptables: 0, nftables: 0 };
  for (const backend of ['iptables', 'nftables']) {
    for (const mapped of [1, 500]) {
      // Other containers already mapped on this host: mapped - 1 (the measured one is the mapped-th).
      for (let k = populated[backend]; k < mapped - 1; k++) call(OURS, 'ADD', 1000 + k, backend);
      populated[backend] = Math.max(populated[backend], mapped - 1);
      const t = { oursAdd: [], oursDel: [], goAdd: [], goDel: [], oursVersion: [], goVersion: [] };
      for (let i = 0; i < ROUNDS; i++) {
        // Process start alone (VERSION does nothing else), to tell startup from the work.
        t.oursVersion.push(call(OURS, 'VERSION', 1, backend));
        t.goVersion.push(call(GO, 'VERSION', 1, undefined));
        t.oursAdd.push(call(OURS, 'ADD', 1, backend));
        t.oursDel.push(call(OURS, 'DEL', 1, backend));
        if (backend === 'iptables') {
          t.goAdd.push(call(GO, 'ADD', 2, undefined));
          t.goDel.push(call(GO, 'DEL', 2, undefined));
        }
      }
      const procs = { add: spawnsPerCall('ADD', 1, backend), del: spawnsPerCall('DEL', 1, backend) };
      results.push({ backend, mapped, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v.length).map(([k, v]) => [k, +median(v).toFixed(1)])), oursProcsAdd: procs.add, oursProcsDel: procs.del });
    }
  }
  console.log(`rounds: ${ROUNDS}, medians in ms (ours = dist/portmap, go = ${GO}); 1 TCP + 1 UDP mapping per container`);
  for (const r of results) {
    const ratio = (a, b) => (a !== undefined && b !== undefined ? ` (go/ours ${(a / b).toFixed(2)}x)` : '');
    console.log(
      `${r.backend.padEnd(9)} mapped=${String(r.mapped).padEnd(4)} ours ADD ${r.oursAdd} DEL ${r.oursDel}` +
        (r.goAdd !== undefined ? ` | go ADD ${r.goAdd}${ratio(r.goAdd, r.oursAdd)} DEL ${r.goDel}${ratio(r.goDel, r.oursDel)}` : '') +
        ` | VERSION ours ${r.oursVersion} go ${r.goVersion} | our processes: ADD ${r.oursProcsAdd}, DEL ${r.oursProcsDel}`,
    );
  }
}

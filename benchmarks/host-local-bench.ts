/**
 * host-local against the Go reference, interleaved (ours, Go, ours, Go, ...) so machine drift hits both alike:
 *  1. wall time of 80 ADDs launched at once on an empty /24 (a fresh data directory per round), and of 80 VERSIONs
 *     (the floor: starting the processes);
 *  2. one ADD (and its DEL) in a 99%-full /16, each implementation on its own identical copy of the directory;
 *  3. our ADD in a 99%-full /16 right after a Go ADD in the same directory (our owner journal rebuilds).
 * Usage: node build/run-ts.mjs benchmarks/host-local-bench.ts [ROUNDS]   (needs /usr/lib/cni/host-local)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, table, timeRun } from './stats';

const root = join(__dirname, '..', '..', '..');
const OURS = join(root, 'dist', 'host-local');
const GO = '/usr/lib/cni/host-local';
const rounds = Number(process.argv[2] ?? 15);
const work = mkdtempSync(join(tmpdir(), 'hl-bench-'));

const conf = (dataDir: string, subnet: string) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'host-local', ipam: { type: 'host-local', subnet, dataDir } });
const env = (command: string, containerID: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH,
  CNI_COMMAND: command,
  CNI_CONTAINERID: containerID,
  CNI_NETNS: '/var/run/netns/none',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/nonexistent',
  ...extra,
});

function runAsync(cmd: string, input: string, e: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, [], { env: e, stdio: ['pipe', 'ignore', 'inherit'] });
    c.on('error', reject);
    // VERSION may exit before reading its input.
    c.stdin.on('error', () => {});
    c.on('close', (code) => (code === 0 ? resolve(0) : reject(new Error(`${cmd} exited ${code}`))));
    c.stdin.end(input);
  });
}

/** 80 processes at once; VERSION is the floor (process start only), ADD adds the lock and the files. */
async function parallel(bin: string, command: 'ADD' | 'VERSION', n: number, round: number): Promise<number> {
  const dataDir = join(work, `par-${round}-${bin === GO ? 'go' : 'ts'}`);
  const input = conf(dataDir, '198.51.100.0/24');
  const t = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => runAsync(bin, input, env(command, `par-${i}`))));
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  rmSync(dataDir, { recursive: true, force: true });
  return ms;
}

/** A /16 with 99% of its 65,533 usable addresses reserved at seeded-random places (Go's file format). */
function fill(dataDir: string): void {
  const dir = join(dataDir, 'bench');
  mkdirSync(dir, { recursive: true });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let v = 2; v < 65535; v++) {
    if (rand() < 0.01) continue;
    writeFileSync(join(dir, `10.77.${v >> 8}.${v & 255}`), `filled-${v}\r\neth0`, { mode: 0o600, flag: 'wx' });
  }
}

async function main() {
  const par = { ours: [] as number[], go: [] as number[], oursVersion: [] as number[], goVersion: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    par.ours.push(await parallel(OURS, 'ADD', 80, r));
    par.go.push(await parallel(GO, 'ADD', 80, r));
    par.oursVersion.push(await parallel(OURS, 'VERSION', 80, r));
    par.goVersion.push(await parallel(GO, 'VERSION', 80, r));
  }

  const tsDir = join(work, 'full-ts');
  const goDir = join(work, 'full-go');
  const sharedDir = join(work, 'full-shared');
  for (const d of [tsDir, goDir, sharedDir]) fill(d);
  const full = { ourAdd: [] as number[], goAdd: [] as number[], ourDel: [] as number[], goDel: [] as number[], ourAfterGo: [] as number[] };
  const one = (bin: string, dataDir: string, command: string, id: string) =>
    timeRun(bin, [], { env: env(command, id), input: conf(dataDir, '10.77.0.0/16') });
  // Two warm-up rounds: our first ADD in a directory builds the owner journal.
  for (let r = -2; r < rounds; r++) {
    const samples = [one(OURS, tsDir, 'ADD', `b-${r}`), one(GO, goDir, 'ADD', `b-${r}`), one(OURS, tsDir, 'DEL', `b-${r}`), one(GO, goDir, 'DEL', `b-${r}`)];
    one(GO, sharedDir, 'ADD', `g-${r}`);
    const afterGo = one(OURS, sharedDir, 'ADD', `s-${r}`);
    one(GO, sharedDir, 'DEL', `g-${r}`);
    one(OURS, sharedDir, 'DEL', `s-${r}`);
    if (r < 0) continue;
    full.ourAdd.push(samples[0]!);
    full.goAdd.push(samples[1]!);
    full.ourDel.push(samples[2]!);
    full.goDel.push(samples[3]!);
    full.ourAfterGo.push(afterGo);
  }
  rmSync(work, { recursive: true, force: true });

  const row = (what: string, ours: number[], go: number[]) => ({ what, 'ours median ms': median(ours), 'Go median ms': median(go), 'Go / ours': median(go) / median(ours) });
  console.log(`host-local, ${rounds} interleaved rounds\n`);
  console.log(
    table([
      row('80 parallel ADDs, wall time', par.ours, par.go),
      row('80 parallel VERSIONs (process start only)', par.oursVersion, par.goVersion),
      row('ADD in a 99%-full /16', full.ourAdd, full.goAdd),
      row('DEL in a 99%-full /16', full.ourDel, full.goDel),
      row('ADD in a 99%-full /16 right after a Go ADD there', full.ourAfterGo, full.goAdd),
    ]),
  );
}

main().catch((e) => {
  rmSync(work, { recursive: true, force: true });
  console.error(e);
  process.exit(1);
});

/**
 * VERSION startup of our executable against `node -e 0` (the floor for anything built on Node) and the Go
 * reference, interleaved. Prints medians, ratios and the executable sizes. Usage: npm run bench:startup [-- ROUNDS]
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { interleave, median, table, timeRun } from './stats';

const root = join(__dirname, '..', '..', '..');
const dist = join(root, 'dist');
const rounds = Number(process.argv[2] ?? 40);
const env = { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' };
const variants: Record<string, () => number> = {
  'ours (dist/bridge VERSION)': () => timeRun(join(dist, 'bridge'), [], { env, input: '' }),
  'node -e 0': () => timeRun(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH } }),
};
if (existsSync('/usr/lib/cni/bridge')) variants['Go reference (bridge VERSION)'] = () => timeRun('/usr/lib/cni/bridge', [], { env, input: '' });

const samples = interleave(variants, rounds, 3);
const base = median(samples['node -e 0']!);
console.log(`VERSION startup, ${rounds} interleaved rounds, median ms\n`);
console.log(
  table(
    Object.entries(samples).map(([name, xs]) => ({ variant: name, 'median ms': median(xs), 'vs node -e 0': median(xs) / base })),
  ),
);
const size = (p: string) => (statSync(p).size / 1048576).toFixed(1) + ' MiB';
console.log(`\nsizes: dist/cni ${size(join(dist, 'cni'))} (bridge, host-local, portmap, cnitool, cni-install are hard links to it); node ${size(process.execPath)}`);
if (existsSync('/usr/lib/cni/bridge')) {
  const go = ['bridge', 'host-local', 'portmap'].map((p) => statSync(join('/usr/lib/cni', p)).size).reduce((a, b) => a + b, 0);
  console.log(`Go reference bridge + host-local + portmap: ${(go / 1048576).toFixed(1)} MiB`);
}

/**
 * The executable is copied to every node of a cluster, so it must start on CPUs other than the build machine's.
 * A V8 startup snapshot is tied to the CPU features V8 saw at build time unless the build marks it portable
 * (build/node-patch.cjs); this starts it in a VM whose CPU is the plain x86-64 baseline (qemu64: no SSE4,
 * AVX, BMI, LZCNT, POPCNT).
 */
import { join } from 'node:path';
import { ROOT } from '../helpers/netns';
import { vmExec, vmUnavailable } from '../helpers/vm';

const why = vmUnavailable();
const t = why ? test.skip : test;

describe(`executable portability${why ? ` (${why})` : ''}`, () => {
  t(
    'dist/bridge answers VERSION on a baseline x86-64 CPU',
    async () => {
      const bridge = join(ROOT, 'dist', 'bridge');
      const r = await vmExec(`grep -m1 '^flags' /proc/cpuinfo; CNI_COMMAND=VERSION ${bridge} </dev/null`, { cpu: 'qemu64' });
      expect(r.stdout).not.toMatch(/\bsse4_2\b|\bavx2\b/);
      expect(r.stderr).not.toContain('Failed to load the startup snapshot');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout.split('\n')[1]!)).toMatchObject({ cniVersion: '1.1.0' });
    },
    300_000,
  );
});

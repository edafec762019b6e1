/** The demo runs from the repository as root and leaves no namespace, link or temp dir behind. */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IS_REFERENCE, PLUGIN_DIR, ROOT, sh } from '../helpers/netns';

test('npm run demo (without the build step) succeeds and leaves the machine as it found it', async () => {
  const env = { ...process.env, ...(IS_REFERENCE ? { CNI_PATH: PLUGIN_DIR } : {}) };
  const r = await sh(process.execPath, [join(ROOT, 'build', 'run-ts.mjs'), 'demo/demo.ts'], { env, timeoutMs: 110_000 });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  for (const text of ['hello from container A', '0% packet loss', 'no iptables rule mentions either container', 'namespaces of this demo left: 0', 'all clean']) {
    expect(r.stdout).toContain(text);
  }
  const pid = /cnidemo-h-(\w+)/.exec(r.stdout)![1]!;
  expect((await sh('ip', ['netns', 'list'])).stdout).not.toContain(pid);
  // Its links lived in its namespaces only.
  expect((await sh('ip', ['-o', 'link', 'show'])).stdout).not.toMatch(/cnidemo0|uplink0/);
  expect(readdirSync(tmpdir()).filter((f) => f.startsWith('cni-demo-'))).toEqual([]);
});

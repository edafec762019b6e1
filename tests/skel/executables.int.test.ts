/** The built executables: self-contained (no node needed), and protocol-correct from the first byte. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PLUGIN_DIR, sh } from '../helpers/netns';

const PLUGINS = ['bridge', 'host-local', 'portmap'];
const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const nodePaths = ['/usr/bin/node', '/usr/local/bin/node', process.execPath].filter((p, i, a) => existsSync(p) && a.indexOf(p) === i);

test.each(PLUGINS)('%s answers VERSION with all seven versions while node is hidden', async (p) => {
  // A private mount namespace where every node binary is covered by an empty file.
  const hide = nodePaths.map((n) => `mount --bind /dev/null ${n}`).join(' && ');
  const script = `${hide} && ! node -e 0 2>/dev/null && CNI_COMMAND=VERSION ${join(PLUGIN_DIR, p)} </dev/null`;
  const r = await sh('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout).supportedVersions).toEqual(VERSIONS);
});

test.each(PLUGINS)('%s with no CNI_COMMAND prints a code-4 error and exits non-zero', async (p) => {
  const r = await sh(join(PLUGIN_DIR, p), [], { env: { PATH: process.env.PATH }, input: '{}' });
  expect(r.code).not.toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_COMMAND') });
});

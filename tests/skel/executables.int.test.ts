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

test("the runtime's NODE_OPTIONS and NODE_EXTRA_CA_CERTS do not reach Node (build/node-patch.cjs)", async () => {
  // Runtimes pass their own environment to plugins; unpatched, the preload failed the call with Node's stack
  // trace, the inspector option was refused, and the missing bundle was warned about on stderr.
  for (const opts of ['--require /nonexistent/preload.js', '--inspect=127.0.0.1:1']) {
    const r = await sh(join(PLUGIN_DIR, 'bridge'), [], {
      env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', NODE_OPTIONS: opts, NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' },
      input: '{"cniVersion":"1.0.0"}',
    });
    expect({ opts, stderr: r.stderr, code: r.code }).toEqual({ opts, stderr: '', code: 0 });
    expect(JSON.parse(r.stdout).supportedVersions).toEqual(VERSIONS);
  }
});

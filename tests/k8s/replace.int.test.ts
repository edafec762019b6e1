/**
 * The installer replaces a plugin executable that a runtime is executing in a loop: every ADD must still
 * succeed (no "text file busy", no "exec format error" from a half-written file). The control shows the
 * hazard is real and that this test sees it: a file held open for writing cannot be executed.
 */
import { appendFileSync, copyFileSync, mkdirSync, openSync, closeSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canUseNetns, netnsPath, PLUGIN_DIR, sh, withSandbox, type ExecResult } from '../helpers/netns';
import { INSTALLER } from './cluster';

const maybe = canUseNetns() ? describe : describe.skip;
jest.setTimeout(180_000);

const REPLACEMENTS = 8;
const MIN_ADDS = 40;

maybe('replacing a plugin executable under load', () => {
  it('no ADD fails while cni-install swaps host-local back and forth', () =>
    withSandbox(async (s) => {
      const pod = await s.container('k8r');
      // Two different builds of host-local: the one under test, and the same with bytes appended (still a valid
      // executable, but a different hash, so every install really replaces the file).
      const srcA = PLUGIN_DIR;
      const srcB = join(s.dir, 'variant');
      mkdirSync(srcB);
      copyFileSync(join(PLUGIN_DIR, 'host-local'), join(srcB, 'host-local'));
      appendFileSync(join(srcB, 'host-local'), Buffer.from('\0cni-ts variant\0'));
      const bin = join(s.dir, 'bin');
      const conf = join(s.dir, 'net.d');
      const installOnce = (src: string) =>
        // In the sandbox's namespace: the installer enables forwarding in the namespace it runs in.
        sh('ip', ['netns', 'exec', s.hostNs, INSTALLER, '--once', '--source-dir', src, '--bin-dir', bin, '--conf-dir', conf, '--plugins', 'host-local', '--pod-cidr', '198.51.100.0/24', '--no-routes', '--no-masquerade']);
      expect((await installOnce(srcA)).code).toBe(0);

      const netconf = JSON.stringify({ cniVersion: '1.0.0', name: 'replace', type: 'host-local', ipam: { type: 'host-local', ranges: [[{ subnet: '2001:db8:7e::/64' }]], dataDir: join(s.dir, 'ipam') } });
      const failures: string[] = [];
      let adds = 0;
      let addsWhileInstalling = 0;
      let installing = true;
      const addLoop = async (worker: number) => {
        for (let i = 0; installing || adds < MIN_ADDS; i++) {
          const env = { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `replace-${worker}-${i}`, CNI_NETNS: netnsPath(pod), CNI_IFNAME: 'eth0', CNI_PATH: bin };
          let r: ExecResult;
          try {
            r = await sh(join(bin, 'host-local'), [], { input: netconf, env });
          } catch (e) {
            failures.push(`ADD ${worker}-${i}: could not exec: ${(e as Error).message}`);
            continue;
          }
          adds++;
          if (installing) addsWhileInstalling++;
          if (r.code !== 0) failures.push(`ADD ${worker}-${i}: exit ${r.code}: ${r.stdout}${r.stderr}`);
        }
      };
      const sizeA = statSync(join(srcA, 'host-local')).size;
      const sizeB = statSync(join(srcB, 'host-local')).size;
      const sizes: number[] = [];
      const swapper = async () => {
        try {
          for (let i = 0; i < REPLACEMENTS; i++) {
            const r = await installOnce(i % 2 === 0 ? srcB : srcA);
            if (r.code !== 0) failures.push(`install ${i}: ${r.stderr}`);
            expect(r.stderr).toContain('copied host-local');
            sizes.push(statSync(join(bin, 'host-local')).size);
          }
        } finally {
          installing = false;
        }
      };
      await Promise.all([addLoop(0), addLoop(1), swapper()]);
      expect(failures).toEqual([]);
      // Each install really swapped the build (B, A, B, ...) while the ADDs ran.
      expect(sizes).toEqual(Array.from({ length: REPLACEMENTS }, (_, i) => (i % 2 === 0 ? sizeB : sizeA)));
      expect(adds).toBeGreaterThanOrEqual(MIN_ADDS);
      // The loop overlapped the swaps: on average more than one ADD per replacement finished while installing.
      expect(addsWhileInstalling).toBeGreaterThan(REPLACEMENTS);
      process.stderr.write(`replace: ${addsWhileInstalling} of ${adds} ADDs ran while ${REPLACEMENTS} replacements were made\n`);
    }));

  it('without --source-dir it installs the executables beside itself (the image layout: /cni/cni-install, /cni/bridge...)', () =>
    withSandbox(async (s) => {
      const bin = join(s.dir, 'bin');
      const r = await sh('ip', ['netns', 'exec', s.hostNs, INSTALLER, '--once', '--bin-dir', bin, '--conf-dir', join(s.dir, 'net.d'), '--pod-cidr', '198.51.100.0/24', '--no-routes', '--no-masquerade']);
      expect(r.stderr).toContain(`copied bridge into ${bin}`);
      expect(r.code).toBe(0);
      for (const n of ['bridge', 'host-local', 'portmap']) expect(statSync(join(bin, n)).size).toBe(statSync(join(dirname(INSTALLER), n)).size);
    }));

  it('control: executing a file that is open for writing fails with ETXTBSY (what an in-place copy risks)', () =>
    withSandbox(async (s) => {
      const target = join(s.dir, 'host-local');
      copyFileSync(join(PLUGIN_DIR, 'host-local'), target);
      const fd = openSync(target, 'r+');
      try {
        const r = await sh(target, [], { env: { CNI_COMMAND: 'VERSION' } }).then((x) => `exit ${x.code}`, (e: NodeJS.ErrnoException) => e.code);
        expect(r).toBe('ETXTBSY');
      } finally {
        closeSync(fd);
      }
      expect((await sh(target, [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' })).code).toBe(0);
    }));
});

/**
 * A plugin call never brings OpenSSL up: the build keeps it out of Node's start (build/node-patch.cjs, item 6), and
 * what the plugins need from it (SHA-512 names, random MACs) is done without it (lib/hash.ts, lib/net/mac.ts).
 * OpenSSL's first step when it starts is to read its configuration file (openssl.cnf, present or not), so a trace
 * of the files each call opens shows whether it did.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bridgeConf, type ChainNet, portmapConf } from '../helpers/chain';
import { canUseNetns, IS_REFERENCE, netnsPath, PLUGIN_DIR, withSandbox } from '../helpers/netns';

const t = canUseNetns() && !IS_REFERENCE && spawnSync('strace', ['-V']).status === 0 ? test : test.skip;

/** A directory of wrappers that run each plugin under strace, one trace file per process. */
function tracedPlugins(dir: string): string {
  const wrap = join(dir, 'traced');
  mkdirSync(wrap);
  for (const p of ['bridge', 'portmap']) {
    writeFileSync(join(wrap, p), `#!/bin/sh\nexec strace -f -qq -e trace=openat -o ${join(dir, 'trace')}.${p}.$$ ${join(PLUGIN_DIR, p)}\n`);
    chmodSync(join(wrap, p), 0o755);
  }
  return wrap;
}

describe.each(['iptables', 'nftables'] as const)('no OpenSSL (%s)', (backend) => {
  t('VERSION and a chain ADD and DEL open no OpenSSL configuration', () =>
    withSandbox(async (s) => {
      const wrap = tracedPlugins(s.dir);
      const n: ChainNet = { name: 'nossl', bridge: 'nossl0', subnet: '192.0.2.0/24', dataDir: join(s.dir, 'ipam'), backend };
      const ctr = await s.container();
      const base = { containerID: 'nossl1', netns: netnsPath(ctr), ifname: 'eth0', path: PLUGIN_DIR };
      const ok = async (type: string, command: string, conf: unknown) => {
        const r = await s.plugin(type, { ...base, command, conf }, wrap);
        expect({ type, command, code: r.code, out: r.code ? r.stdout : '' }).toEqual({ type, command, code: 0, out: '' });
        return r.json;
      };
      await ok('bridge', 'VERSION', bridgeConf(n));
      const br = await ok('bridge', 'ADD', bridgeConf(n));
      const pm = await ok('portmap', 'ADD', portmapConf(n, 18080, br));
      await ok('portmap', 'DEL', portmapConf(n, 18080, pm));
      await ok('bridge', 'DEL', bridgeConf(n, pm));
      const traces = readdirSync(s.dir).filter((f) => f.startsWith('trace.'));
      expect(traces.length).toBeGreaterThanOrEqual(5);
      const opened = traces.flatMap((f) => readFileSync(join(s.dir, f), 'utf8').split('\n')).filter((l) => l.includes('openat('));
      // The trace works: the plugins' own reads are in it.
      expect(opened.some((l) => l.includes('/dev/urandom'))).toBe(true);
      expect(opened.filter((l) => /openssl\.cnf|libssl|libcrypto/.test(l))).toEqual([]);
    }),
  );
});

/**
 * Fault injection: each plugin of a bridge + host-local + portmap chain is SIGKILLed at 10 evenly spread points
 * of its ADD; then DEL (alternately with and without prevResult), then GC. Afterwards the host namespace and the
 * dataDir must be exactly as before: no veth, reservation, rule, chain, lock holder or stray process.
 * host-local runs in-process inside bridge when CNI_PATH resolves to our executable, so it is also killed on its
 * own, as an IPAM plugin exec'd by another runtime would be.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bridgeConf, chainAdd, chainDel, chainGC, hostState, portmapConf, type ChainNet } from '../helpers/chain';
import { netnsPath, PLUGIN_DIR, Sandbox, uniqueName, withSandbox } from '../helpers/netns';

const POINTS = 10;

/** Starts a plugin in the host namespace and SIGKILLs it after `ms` (if still running). Resolves when it is gone. */
function killAfter(s: Sandbox, type: string, env: Record<string, string>, conf: unknown, ms: number): Promise<void> {
  return new Promise((resolve) => {
    // exec: the plugin replaces `ip netns exec`, so the pid we kill is the plugin itself.
    const child = spawn('ip', ['netns', 'exec', s.hostNs, join(PLUGIN_DIR, type)], { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'ignore', 'ignore'] });
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', () => {
      clearTimeout(t);
      resolve();
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

async function timeAdd(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function noLockHeld(dir: string): boolean {
  let ino: number;
  try {
    ino = statSync(join(dir, 'lock')).ino;
  } catch {
    return true;
  }
  return !readFileSync('/proc/locks', 'utf8').split('\n').some((l) => l.includes(`:${ino} `));
}

describe.each(['iptables', 'nftables'] as const)('killed mid-ADD (%s)', (backend) => {
  test.each(['bridge', 'portmap', 'host-local'])('%s killed at %i points, then DEL and GC leave nothing', async (victim) => {
    await withSandbox(async (s) => {
      const n: ChainNet = { name: uniqueName('kn'), bridge: uniqueName('kb'), subnet: '198.51.100.0/24', dataDir: join(s.dir, 'data'), backend };
      const hostPort = 18080;
      // Warm up: shared top-level chains exist after the first attachment; they are allowed to stay.
      const warm = await s.container();
      const warmResult = await chainAdd(s, n, 'warm', warm, hostPort);
      await chainDel(s, n, 'warm', warm, hostPort, warmResult);
      const baseline = await hostState(s, n);

      // How long the victim's ADD takes when nothing kills it.
      const probe = await s.container();
      const durations: number[] = [];
      let prevResult: any;
      for (let i = 0; i < 3; i++) {
        if (victim === 'portmap') {
          const br = (await s.plugin('bridge', { command: 'ADD', containerID: 'probe', netns: netnsPath(probe), conf: bridgeConf(n) })).json;
          durations.push(await timeAdd(() => s.plugin('portmap', { command: 'ADD', containerID: 'probe', netns: netnsPath(probe), conf: portmapConf(n, hostPort, br) })));
          prevResult = br;
        } else if (victim === 'bridge') {
          durations.push(await timeAdd(async () => (prevResult = (await s.plugin('bridge', { command: 'ADD', containerID: 'probe', netns: netnsPath(probe), conf: bridgeConf(n) })).json)));
        } else {
          durations.push(await timeAdd(async () => (prevResult = (await s.plugin('host-local', { command: 'ADD', containerID: 'probe', netns: netnsPath(probe), conf: bridgeConf(n) })).json)));
        }
        await chainDel(s, n, 'probe', probe, hostPort, prevResult);
        if (victim === 'host-local') await s.plugin('host-local', { command: 'DEL', containerID: 'probe', conf: bridgeConf(n) });
      }
      const total = [...durations].sort((a, b) => a - b)[1]!;

      for (let k = 1; k <= POINTS; k++) {
        const ctr = await s.container();
        const id = `killed-${k}`;
        const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: netnsPath(ctr), CNI_IFNAME: 'eth0', CNI_PATH: PLUGIN_DIR };
        const at = (total * k) / (POINTS + 1);
        if (victim === 'portmap') {
          const br = (await s.plugin('bridge', { command: 'ADD', containerID: id, netns: netnsPath(ctr), conf: bridgeConf(n) })).json;
          await killAfter(s, 'portmap', env, portmapConf(n, hostPort, br), at);
        } else {
          await killAfter(s, victim, env, bridgeConf(n), at);
        }
        // Processes the victim started (ip, iptables-restore, nft) are not killed with it and finish their batch;
        // a runtime's DEL after a timeout comes later too, so let them settle first.
        await new Promise((r) => setTimeout(r, 300));
        // Odd points: the runtime kept a prevResult (of the same shape); even points: it has none.
        const withPrev = k % 2 === 1 ? prevResult : undefined;
        if (victim === 'host-local') {
          const r = await s.plugin('host-local', { command: 'DEL', containerID: id, conf: bridgeConf(n, withPrev) });
          expect(r.code).toBe(0);
        } else {
          await chainDel(s, n, id, k % 3 === 0 ? null : ctr, hostPort, withPrev);
        }
      }
      await chainGC(s, n, []);
      expect(await hostState(s, n)).toEqual(baseline);
      expect(noLockHeld(join(n.dataDir, n.name))).toBe(true);
      const strays = (await s.exec('sh', ['-c', `ps -eo args | grep -E '^(flock|cat)( |$)' | grep -F '${n.dataDir}' || true`])).stdout.trim();
      expect(strays).toBe('');
    });
  });
});

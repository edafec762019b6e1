/**
 * lib/exec nftApply: one unscoped nft transaction at a time per network namespace (the lock is the namespace's own
 * nsfs file), a bounded wait that fails with code 11, and no waiting on other namespaces' transactions; scoped and
 * tables-only scripts (which make nft fetch little) do not wait.
 */
import { spawn } from 'node:child_process';
import { nftApply } from '../../lib/exec';
import { canUseNetns, netnsPath, withSandbox } from '../helpers/netns';

const maybe = canUseNetns() ? test : test.skip;

/** Holds the nft lock of namespace `ns` the way another nftApply would, until killed. */
function holdNftLock(ns: string) {
  const child = spawn('ip', ['netns', 'exec', ns, 'flock', '/proc/self/ns/net', 'sh', '-c', 'echo held; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  const gone = new Promise((r) => child.on('close', r));
  const kill = () => (process.kill(-child.pid!, 'SIGKILL'), gone);
  return new Promise<{ kill: () => Promise<unknown> }>((resolve) => child.stdout.once('data', () => resolve({ kill })));
}

maybe('a held namespace lock makes an unscoped nftApply wait, then fail with code 11; scoped scripts and other namespaces go on; free again once released', async () => {
  await withSandbox(async (s) => {
    const other = await s.container();
    const holder = await holdNftLock(s.hostNs);
    try {
      const t = performance.now();
      await expect(nftApply('add table inet cnits_locktest\n', { netns: netnsPath(s.hostNs), timeoutMs: 3000 })).rejects.toMatchObject({
        code: 11,
        message: expect.stringMatching(/^nft \(in netns \/\S+\): waited 1 s for the other nft transactions of this network namespace/),
      });
      expect(performance.now() - t).toBeGreaterThanOrEqual(900);
      expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_locktest'])).code).not.toBe(0);
      // Scripts that make nft fetch little do not take turns.
      await nftApply('add table inet cnits_scoped\nadd chain inet cnits_scoped c\n', { netns: netnsPath(s.hostNs), timeoutMs: 3000, scopeChain: 'inet cnits_scoped c' });
      await nftApply('add chain inet cnits_scoped d { counter ; }\n', { netns: netnsPath(s.hostNs), timeoutMs: 3000, tablesOnly: true });
      expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_scoped'])).stdout).toMatch(/chain d \{\s+counter/);
      // Another namespace's transaction does not wait for this one's lock.
      await nftApply('add table inet cnits_locktest\n', { netns: netnsPath(other), timeoutMs: 3000 });
      expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_locktest'], { ns: other })).code).toBe(0);
    } finally {
      await holder.kill();
    }
    await nftApply('add table inet cnits_locktest\n', { netns: netnsPath(s.hostNs), timeoutMs: 3000 });
    expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_locktest'])).code).toBe(0);
  });
});

maybe('a failing transaction still reports nft’s own error', async () => {
  await withSandbox(async (s) => {
    await expect(nftApply('delete table inet cnits_absent\n', { netns: netnsPath(s.hostNs) })).rejects.toMatchObject({
      code: 999,
      message: expect.stringMatching(/^nft -f - \(in netns \/\S+\) failed with exit status 1: .*No such file or directory/),
    });
    const r = await nftApply('delete table inet cnits_absent\n', { netns: netnsPath(s.hostNs), allowFailure: true });
    expect(r.code).toBe(1);
  });
});

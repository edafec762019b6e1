/** lib/lock: bounded waits that name the holder, and locks that die with their process. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lockFile } from '../../lib/lock';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'cni-lock-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `flock FILE sleep N` in its own process group and resolves once it holds the lock. */
function holdWithFlock(file: string, secs: number) {
  const child = spawn('flock', ['-x', file, 'sh', '-c', `echo held; exec sleep ${secs}`], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  const gone = new Promise((r) => child.on('close', r));
  // The lock's descriptor is shared by flock and sleep: killing the group is what frees it.
  const kill = () => (process.kill(-child.pid!, 'SIGKILL'), gone);
  return new Promise<{ kill: () => Promise<unknown> }>((resolve) => child.stdout.once('data', () => resolve({ kill })));
}

test('a lock held elsewhere times out with code 11 naming the holder', async () => {
  const file = join(dir, 'lock-a');
  const holder = await holdWithFlock(file, 30);
  try {
    await expect(lockFile(file, 1000)).rejects.toMatchObject({ code: 11, message: expect.stringMatching(/timed out after 1 s waiting for lock .*lock-a, held by pid \d+ \(.*sleep 30/) });
  } finally {
    await holder.kill();
  }
});

test('a lock is free again once its holder is killed, and ours excludes others until released', async () => {
  const file = join(dir, 'lock-b');
  const holder = await holdWithFlock(file, 30);
  await holder.kill();
  const ours = await lockFile(file, 2000);
  await expect(lockFile(file, 1000)).rejects.toMatchObject({ code: 11 });
  await ours.release();
  const again = await lockFile(file, 1000);
  await again.release();
});

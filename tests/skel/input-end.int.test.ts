/**
 * lib/exec gives a child the end of its input when `finish` is called, not at the event loop's next turn: a
 * child that runs to the end of its input (ip -batch, nft -f) must not wait for what this thread does next.
 */
import { start, run } from '../../lib/exec';

/** Holds this thread, as spawning the next processes or IPAM's work do. */
function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

// The child prints when it saw the end of its input (ms since the epoch).
const SEES_EOF = ['-c', 'cat >/dev/null; date +%s%3N'];

test('finish gives end of input at once, while this thread is busy', async () => {
  const p = start('sh', SEES_EOF);
  p.write('some input\n');
  const asked = Date.now();
  const done = p.finish();
  busy(1500);
  const eofAt = Number((await done).stdout.trim());
  // With the shutdown left to the event loop, the child saw the end only after the busy second and a half.
  expect(eofAt - asked).toBeLessThan(1000);
});

test('input larger than the pipe buffer still arrives whole', async () => {
  const big = 'x'.repeat(4 << 20) + '\n';
  const r = await run('wc', ['-c'], { input: big });
  expect(Number(r.stdout.trim())).toBe(big.length);
});

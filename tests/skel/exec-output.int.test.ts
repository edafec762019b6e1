/**
 * lib/exec's `stdoutToFile`: a child's stdout in an unlinked temporary file instead of a pipe (for nft, which
 * writes a listing in thousands of small writes). What the caller sees must not depend on where it went.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { run, start } from '../../lib/exec';

// One write per line (sh's echo is a builtin), then a cue on stderr, as nft -i prints its complaint after a listing.
const SCRIPT = 'for i in $(seq 1 3000); do echo "line $i é"; done; echo cue >&2; read -r x; echo "after $x"';
const ours = () => readdirSync(tmpdir()).filter((n) => n.startsWith(`.cni-ts-out-${process.pid}-`));

test('stdout through a file reads the same as through a pipe, for run, until and finish, and leaves no file', async () => {
  const viaPipe = await run('sh', ['-c', SCRIPT], { input: 'x\n' });
  const viaFile = await run('sh', ['-c', SCRIPT], { input: 'x\n', stdoutToFile: true });
  expect(viaPipe.stdout.split('\n')).toHaveLength(3002);
  expect(viaFile).toEqual(viaPipe);

  const p = start('sh', ['-c', SCRIPT], { stdoutToFile: true });
  // Everything written before the cue is there when the cue is (the child's writes are done by then).
  const seen = await p.until((stdout, stderr) => (stderr.includes('cue') ? stdout : undefined));
  expect(seen).toBe(viaPipe.stdout.slice(0, viaPipe.stdout.indexOf('after')));
  p.write('y\n');
  const done = await p.finish();
  expect(done.stdout.endsWith('line 3000 é\nafter y\n')).toBe(true);
  // Asked after the child is gone: the last reading, not a closed descriptor.
  expect(await p.until((stdout) => stdout)).toBe(done.stdout);
  expect(ours()).toEqual([]);
});

test('a failing child reports its stdout from the file too', async () => {
  const r = await run('sh', ['-c', 'echo partial; echo broken >&2; exit 3'], { stdoutToFile: true, allowFailure: true });
  expect(r).toEqual({ code: 3, stdout: 'partial\n', stderr: 'broken\n' });
  await expect(run('sh', ['-c', 'echo partial; exit 3'], { stdoutToFile: true })).rejects.toMatchObject({ code: 999 });
  expect(ours()).toEqual([]);
});

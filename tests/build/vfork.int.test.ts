/**
 * The tuned node starts child processes with vfork (build/node-patch.cjs, item 10): its child runs in the
 * parent's memory until exec, and the stub puts back what libuv's child code writes there. This runs the same
 * spawns under the stock node and the tuned one (the base of dist/cni) and compares what each sees: outputs,
 * environments, working directories, exec failures, 40 children at once with large outputs, and the parent's
 * own environment afterwards; a syscall trace shows that the tuned node's children came from vfork.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tuneNode } from '../../build/node-patch.cjs';
import { ROOT } from '../helpers/netns';

const patchVersion = createHash('sha256').update(readFileSync(join(ROOT, 'build', 'node-patch.cjs'))).digest('hex').slice(0, 12);
const tuned = join(ROOT, 'build', 'out', `node-${process.version}-${patchVersion}`);
// Only a node whose uv_spawn is the checked one gets the stub; on another, this test has nothing to check.
const applies = existsSync(tuned) && !tuneNode(readFileSync(process.execPath)).notDone.includes('vfork spawn');
const t = applies ? test : test.skip;

const SCRIPT = String.raw`
const cp = require('child_process');
const out = {};
out.echo = cp.execFileSync('/bin/echo', ['hi']).toString();
out.env = cp.execFileSync('/bin/sh', ['-c', 'echo "$FOO:$HOME"'], { env: { FOO: 'bar' } }).toString();
out.cwd = cp.execFileSync('pwd', { cwd: '/' }).toString();
out.missing = cp.spawnSync('/nonexistent/tool').error?.code;
out.onPath = cp.spawnSync('no-such-tool-anywhere').error?.code;
out.notExecutable = cp.spawnSync(process.argv[2]).error?.code;
out.exit = cp.spawnSync('/bin/sh', ['-c', 'exit 7']).status;
const envBefore = JSON.stringify(process.env);
Promise.all(
  [...Array(40)].map(
    (_, i) =>
      new Promise((resolve) => {
        const c = cp.spawn('/bin/sh', ['-c', 'head -c 100000 /dev/zero | tr "\\0" a; echo ' + i], { env: { I: String(i), PATH: process.env.PATH } });
        let s = '';
        c.stdout.on('data', (d) => (s += d));
        c.on('close', (code) => resolve(code === 0 && s === 'a'.repeat(100000) + i + '\n'));
      }),
  ),
).then((ok) => {
  out.parallel = ok.filter(Boolean).length;
  out.envKept = JSON.stringify(process.env) === envBefore && process.env.CNI_VFORK_MARK;
  process.stdout.write(JSON.stringify(out));
});
`;

describe('vfork spawn in the tuned node', () => {
  t('children see what they see under the stock node, and the parent keeps its environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cni-test-vfork-'));
    try {
      const script = join(dir, 'spawns.js');
      writeFileSync(script, SCRIPT);
      const plain = join(dir, 'not-executable');
      writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 });
      const env = { ...process.env, CNI_VFORK_MARK: 'kept' };
      const run = (node: string) => {
        const r = spawnSync(node, [script, plain], { env, encoding: 'utf8', timeout: 60_000 });
        expect(r.stderr).toBe('');
        return JSON.parse(r.stdout) as Record<string, unknown>;
      };
      const stock = run(process.execPath);
      expect(stock).toEqual({ echo: 'hi\n', env: 'bar:\n', cwd: '/\n', missing: 'ENOENT', onPath: 'ENOENT', notExecutable: 'EACCES', exit: 7, parallel: 40, envKept: 'kept' });
      expect(run(tuned)).toEqual(stock);
      // The children came from vfork, not fork.
      const trace = join(dir, 'trace');
      const traced = spawnSync('strace', ['-f', '-qq', '-e', 'trace=vfork,fork,clone,clone3', '-o', trace, tuned, script, plain], { env, encoding: 'utf8', timeout: 60_000 });
      if (traced.error) return; // no strace: the comparison above stands
      expect(JSON.parse(traced.stdout)).toEqual(stock);
      const parent = readFileSync(trace, 'utf8').split('\n')[0]!.split(' ')[0];
      const own = readFileSync(trace, 'utf8').split('\n').filter((l) => l.startsWith(`${parent} `));
      expect(own.filter((l) => /\bvfork\(/.test(l)).length).toBeGreaterThanOrEqual(46);
      expect(own.filter((l) => /clone\(child_stack=NULL/.test(l))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

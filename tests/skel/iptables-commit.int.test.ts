/**
 * lib/exec iptablesRestore with a payload that removes rules or chains: it resolves once the commit is in
 * (iptables-restore's complaint about the marker line after the payload), without waiting for the process to
 * exit; a failure inside the payload is still reported as that failure.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failedAtLine, iptablesRestore } from '../../lib/exec';
import { canUseNetns, netnsPath, withSandbox } from '../helpers/netns';

const maybe = canUseNetns() ? test : test.skip;

test('failedAtLine reads both ways iptables-restore names a failed line', () => {
  expect(failedAtLine('iptables-restore: line 7 failed', 7)).toBe(true);
  expect(failedAtLine('iptables-nft-restore: line 7 failed: No chain/target/match by that name.', 7)).toBe(true);
  expect(failedAtLine("iptables-nft-restore v1.8.9 (nf_tables): iptables-nft-restore: line 7 table name 'cni-committed' invalid\nError occurred at line: 7\n", 7)).toBe(true);
  expect(failedAtLine('iptables-restore: line 17 failed', 7)).toBe(false);
  expect(failedAtLine('iptables-restore: line 3 failed', 7)).toBe(false);
});

maybe('a removal resolves when its commit is in, shows at once, and says nothing of the marker', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    const dir = mkdtempSync(join(tmpdir(), 'ipt-commit-'));
    const before = process.env.CNI_TS_TRACE;
    process.env.CNI_TS_TRACE = join(dir, 'trace');
    try {
      await iptablesRestore(4, '*nat\n:CNITS-COMMIT - [0:0]\n-A CNITS-COMMIT -j RETURN\n-A POSTROUTING -s 192.0.2.9 -j CNITS-COMMIT\nCOMMIT\n', { netns });
      const r = await iptablesRestore(4, '*nat\n-D POSTROUTING -s 192.0.2.9 -j CNITS-COMMIT\n-F CNITS-COMMIT\n-X CNITS-COMMIT\nCOMMIT\n', { netns });
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect((await s.exec('iptables', ['-t', 'nat', '-S'])).stdout).not.toContain('CNITS-COMMIT');
      const trace = readFileSync(join(dir, 'trace'), 'utf8').trim().split('\n');
      expect(trace[0]).toMatch(/iptables-restore --noflush -w 10 \(in netns \S+\) -> 0 \(from/);
      expect(trace[1]).toMatch(/iptables-restore --noflush -w 10 \(in netns \S+\) -> 0 \(done; its exit not awaited\)/);
    } finally {
      if (before === undefined) delete process.env.CNI_TS_TRACE;
      else process.env.CNI_TS_TRACE = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

maybe('a removal that fails inside the payload reports that line, not the marker', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    const payload = '*nat\n-D POSTROUTING -s 192.0.2.10 -j RETURN\nCOMMIT\n';
    const r = await iptablesRestore(4, payload, { netns, allowFailure: true });
    expect(r.code).toBe(1);
    expect(failedAtLine(r.stderr, 2)).toBe(true);
    expect(r.stderr).not.toContain('cni-committed');
    await expect(iptablesRestore(4, payload, { netns })).rejects.toMatchObject({
      code: 999,
      message: expect.stringMatching(/^iptables-restore --noflush -w 10 failed with exit status 1: .*line 2/),
    });
  });
});

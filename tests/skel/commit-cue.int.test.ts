/**
 * lib/exec's removals that resolve once the commit is in, without waiting for the process to exit (which waits
 * for the kernel's RCU grace period): iptablesRestore (iptables-restore's complaint about a marker line after
 * the payload) and nftApply with resolveAtCommit (nft -i's complaint about a cue line after the script). A
 * failure inside the payload is still reported as that failure.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { failedAtLine, interactiveOutcome, iptablesRestore, nftApply, nftListThenApply, nftSession } from '../../lib/exec';
import { canUseNetns, netnsPath, withSandbox } from '../helpers/netns';
import { withoutInteractiveNft } from '../helpers/nft';

const maybe = canUseNetns() ? test : test.skip;

/** Runs fn with CNI_TS_TRACE set to a fresh file; returns the trace's lines. */
async function traced(fn: () => Promise<void>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nft-commit-'));
  const before = process.env.CNI_TS_TRACE;
  process.env.CNI_TS_TRACE = join(dir, 'trace');
  try {
    await fn();
    return readFileSync(join(dir, 'trace'), 'utf8').trim().split('\n');
  } finally {
    if (before === undefined) delete process.env.CNI_TS_TRACE;
    else process.env.CNI_TS_TRACE = before;
    rmSync(dir, { recursive: true, force: true });
  }
}

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
    const trace = await traced(async () => {
      await iptablesRestore(4, '*nat\n:CNITS-COMMIT - [0:0]\n-A CNITS-COMMIT -j RETURN\n-A POSTROUTING -s 192.0.2.9 -j CNITS-COMMIT\nCOMMIT\n', { netns });
      const r = await iptablesRestore(4, '*nat\n-D POSTROUTING -s 192.0.2.9 -j CNITS-COMMIT\n-F CNITS-COMMIT\n-X CNITS-COMMIT\nCOMMIT\n', { netns });
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect((await s.exec('iptables', ['-t', 'nat', '-S'])).stdout).not.toContain('CNITS-COMMIT');
    });
    expect(trace[0]).toMatch(/iptables-restore --noflush -w 10 \(in netns \S+\) -> 0 \(from/);
    expect(trace[1]).toMatch(/iptables-restore --noflush -w 10 \(in netns \S+\) -> 0 \(done; its exit not awaited\)/);
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
      message: expect.stringMatching(/^iptables-restore --noflush -w 10 \(in netns \/var\/run\/netns\/\S+\) failed with exit status 1: .*line 2/),
    });
  });
});

test('interactiveOutcome: nothing before the cue is known; the errors before it are the script\'s', () => {
  expect(interactiveOutcome('')).toBeUndefined();
  expect(interactiveOutcome('Error: Could not process rule: No such file or directory\ndelete table inet x\n')).toBeUndefined();
  const cue = 'Error: syntax error, unexpected junk\n%cni-committed\n^\n';
  expect(interactiveOutcome(cue)).toEqual({ code: 0, stdout: '', stderr: '' });
  const failed = 'Error: Could not process rule: No such file or directory\ndelete table inet x\n                  ^\n';
  expect(interactiveOutcome(failed + cue)).toEqual({ code: 1, stdout: '', stderr: failed.trim() });
});

maybe('an nft removal resolves at its commit, in one transaction, and leaves $HOME alone', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    const home = mkdtempSync(join(tmpdir(), 'nft-home-'));
    try {
      const env = { ...process.env, HOME: home };
      await nftApply('add table inet cnits_cue\nadd chain inet cnits_cue c1\nadd chain inet cnits_cue c2\n', { netns });
      const trace = await traced(async () => {
        const r = await nftApply('flush chain inet cnits_cue c1\ndelete chain inet cnits_cue c1\n', { netns, env, resolveAtCommit: true });
        expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
      });
      expect(trace.join('\n')).toMatch(/flock .* nft -i .*-> 0 \(done; its exit not awaited\)/);
      const listed = await s.exec('nft', ['list', 'table', 'inet', 'cnits_cue']);
      expect(listed.stdout).not.toContain('chain c1');
      expect(listed.stdout).toContain('chain c2');
      // All or nothing: the script's first command is undone with the failing second one.
      const bad = 'delete chain inet cnits_cue c2\ndelete chain inet cnits_cue absent\n';
      const r = await nftApply(bad, { netns, env, resolveAtCommit: true, allowFailure: true });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/No such file or directory/);
      expect(r.stderr).not.toContain('cni-committed');
      expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_cue'])).stdout).toContain('chain c2');
      await expect(nftApply(bad, { netns, env, resolveAtCommit: true })).rejects.toMatchObject({ code: 999, message: expect.stringMatching(/^nft -i \(in netns \/\S+\) failed with exit status 1: .*No such file or directory/) });
      expect(existsSync(join(home, '.nft.history'))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

maybe('an nft built without interactive mode gets the same script with -f', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    await withoutInteractiveNft(async (env) => {
      await nftApply('add table inet cnits_noi\nadd chain inet cnits_noi c1\n', { netns });
      const trace = await traced(async () => {
        expect(await nftApply('delete chain inet cnits_noi c1\n', { netns, env, resolveAtCommit: true })).toMatchObject({ code: 0 });
      });
      expect(trace).toEqual([expect.stringMatching(/nft -i \(in netns \S+\) -> 1 \(from/), expect.stringMatching(/nft -f - \(in netns \S+\) -> 0 \(from/)]);
      expect((await s.exec('nft', ['list', 'table', 'inet', 'cnits_noi'])).stdout).not.toContain('chain c1');
    });
  });
});

maybe('nftListThenApply lists and applies what the listing calls for in one nft process, at its commit', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    await nftApply('add table inet cnits_lta\nadd chain inet cnits_lta scope\nadd chain inet cnits_lta c\nadd rule inet cnits_lta c counter comment "ours"\nadd rule inet cnits_lta c counter comment "theirs"\n', { netns });
    const seen: Array<string | null> = [];
    const ours = (listing: string | null) => {
      seen.push(listing);
      const handle = /comment "ours" # handle (\d+)/.exec(listing ?? '')?.[1];
      return handle ? `delete rule inet cnits_lta c handle ${handle}\n` : undefined;
    };
    const trace = await traced(async () => {
      const r = await nftListThenApply('list chain inet cnits_lta c', ours, { netns, scopeChain: 'inet cnits_lta scope' });
      expect(r?.applied).toMatchObject({ code: 0 });
    });
    expect(seen[0]).toMatch(/comment "ours" # handle \d+\n[\s\S]*comment "theirs"[\s\S]*\}\n$/);
    expect(trace).toEqual([expect.stringMatching(/^\d+ms nft -a -i \(in netns \S+\) -> 0 \(done; its exit not awaited\)/)]);
    const left = (await s.exec('nft', ['list', 'chain', 'inet', 'cnits_lta', 'c'])).stdout;
    expect(left).not.toContain('"ours"');
    expect(left).toContain('"theirs"');
    // Nothing called for: nothing applied. No such chain: the listing is null.
    expect(await nftListThenApply('list chain inet cnits_lta c', ours, { netns, scopeChain: 'inet cnits_lta scope' })).toEqual({ listing: expect.stringContaining('theirs') });
    expect(await nftListThenApply('list chain inet cnits_lta absent', ours, { netns, scopeChain: 'inet cnits_lta scope' })).toEqual({ listing: null });
    expect(seen.at(-1)).toBeNull();
    // A failing script (its scope chain is missing) is reported with allowFailure, thrown without; the rule stays.
    await nftApply('add rule inet cnits_lta c counter comment "ours"\n', { netns });
    const failed = await nftListThenApply('list chain inet cnits_lta c', ours, { netns, scopeChain: 'inet cnits_lta nochain', allowFailure: true });
    expect(failed?.applied).toMatchObject({ code: 1, stderr: expect.stringMatching(/No such file or directory/) });
    await expect(nftListThenApply('list chain inet cnits_lta c', ours, { netns, scopeChain: 'inet cnits_lta nochain' })).rejects.toMatchObject({
      code: 999,
      message: expect.stringMatching(/^nft -a -i \(in netns \/\S+\) failed with exit status 1: .*No such file or directory/),
    });
    expect((await s.exec('nft', ['list', 'chain', 'inet', 'cnits_lta', 'c'])).stdout).toContain('"ours"');
  });
});

maybe('nftListThenApply without an interactive nft says so (undefined), and changes nothing', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    await withoutInteractiveNft(async (env) => {
      await nftApply('add table inet cnits_lti\nadd chain inet cnits_lti c\nadd rule inet cnits_lti c counter comment "ours"\n', { netns });
      const r = await nftListThenApply('list chain inet cnits_lti c', () => 'flush chain inet cnits_lti c\n', { netns, env, scopeChain: 'inet cnits_lti c' });
      expect(r).toBeUndefined();
      expect((await s.exec('nft', ['list', 'chain', 'inet', 'cnits_lti', 'c'])).stdout).toContain('"ours"');
    });
  });
});


maybe('nftSession runs scripts in turn in one nft process, each with its own outcome and output; with echo, the handles', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    await nftApply('add table inet cnits_ses\nadd chain inet cnits_ses scope\nadd chain inet cnits_ses c\n', { netns });
    const trace = await traced(async () => {
      const nft = nftSession({ netns, echo: true });
      const added = await nft.send('add rule inet cnits_ses c counter comment "a"\nadd rule inet cnits_ses c counter comment "b"\n', { scopeChain: 'inet cnits_ses scope' });
      expect(added).toMatchObject({ code: 0 });
      const handles = [...added!.stdout.matchAll(/^add rule inet cnits_ses c counter .*comment "(a|b)" # handle (\d+)$/gm)].map((m) => [m[1], Number(m[2])]);
      expect(handles).toEqual([['a', expect.any(Number)], ['b', handles[0]![1] as number + 1]]);
      // A failure is this script's alone, and the session goes on; the next output is the next script's only.
      const failed = await nft.send('delete rule inet cnits_ses c handle 999999\n', { scopeChain: 'inet cnits_ses scope' });
      expect(failed).toMatchObject({ code: 1, stderr: expect.stringMatching(/No such file or directory/) });
      const listed = await nft.send('list chain inet cnits_ses c');
      expect(listed?.code).toBe(0);
      expect(listed?.stdout).toMatch(/^table inet cnits_ses \{\n[\s\S]*comment "a"[\s\S]*comment "b"[\s\S]*\}\n$/);
      expect(listed?.stdout).not.toContain('add rule');
      nft.close();
      // After close, nothing would answer: a send says so at once.
      expect(await nft.send('list chain inet cnits_ses c')).toBeUndefined();
    });
    expect(trace).toEqual([expect.stringMatching(/^\d+ms nft -e -a -i \(in netns \S+\) -> 0 \(done; its exit not awaited\)/)]);
  });
});

maybe('nftSession without an interactive nft answers undefined and changes nothing', async () => {
  await withSandbox(async (s) => {
    const netns = netnsPath(s.hostNs);
    await withoutInteractiveNft(async (env) => {
      await nftApply('add table inet cnits_sni\nadd chain inet cnits_sni c\n', { netns });
      const nft = nftSession({ netns, env });
      expect(await nft.send('add rule inet cnits_sni c counter comment "ours"\n')).toBeUndefined();
      nft.close();
      expect((await s.exec('nft', ['list', 'chain', 'inet', 'cnits_sni', 'c'])).stdout).not.toContain('"ours"');
    });
  });
});

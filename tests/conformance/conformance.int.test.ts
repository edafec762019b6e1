/**
 * Runs the conformance suite (conformance-tests/) in-process against the Go reference in /usr/lib/cni and
 * against our dist/. The reference must have no FAIL (its SHOULD gaps are WARNs: masquerade leak on DEL without
 * netns, leftovers of a failed ADD, no cniVersion in errors, portmap CHECK failing on IPv4-only containers). Ours claims 1.1.0 and both firewall backends, so
 * every case must PASS: no FAIL, no WARN (we do the SHOULDs), no SKIP.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Outcome } from '../../conformance-tests/harness';
import { row } from '../../conformance-tests/report';
import { runSuite } from '../../conformance-tests/suite';
import { canUseNetns, ROOT } from '../helpers/netns';

const REFERENCE = '/usr/lib/cni';
const OURS = join(ROOT, 'dist');

const table = (os: Outcome[]) => os.map((o) => row(o, 40)).join('\n');
const runnable = canUseNetns();

(runnable && existsSync(join(REFERENCE, 'bridge')) ? test : test.skip)('the Go reference passes every case it claims', async () => {
  const r = await runSuite({ pluginDir: REFERENCE });
  const failed = r.outcomes.filter((o) => o.status === 'FAIL');
  expect(table(failed)).toBe('');
  // The suite really exercised the plugins: most cases ran, and the skips are the 1.1.0/nftables ones.
  expect(r.outcomes.filter((o) => o.status === 'PASS').length).toBeGreaterThanOrEqual(50);
  for (const o of r.outcomes.filter((x) => x.status === 'SKIP')) expect(o.reason).toMatch(/1\.1\.0|nftables/);
}, 300_000);

(runnable && existsSync(join(OURS, 'bridge')) ? test : test.skip)('ours passes every case, SHOULDs included', async () => {
  const r = await runSuite({ pluginDir: OURS });
  expect(r.outcomes.length).toBeGreaterThanOrEqual(70);
  expect(table(r.outcomes.filter((o) => o.status !== 'PASS'))).toBe('');
}, 300_000);

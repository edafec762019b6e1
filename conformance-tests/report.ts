/** The table and summary the CLI prints. */
import type { Outcome } from './harness';
import type { SuiteReport } from './suite';

export const row = (o: Outcome, width: number) =>
  `${o.id.padEnd(width)}  ${o.status.padEnd(4)}  ${String(o.ms).padStart(6)}${o.reason ? `  ${o.reason.replace(/\s+/g, ' ')}` : ''}`;

export function header(width: number): string {
  return `${'case'.padEnd(width)}  res.      ms\n${'-'.repeat(width + 14)}`;
}

export function counts(outcomes: Outcome[]): Record<Outcome['status'], number> {
  const c = { PASS: 0, FAIL: 0, WARN: 0, SKIP: 0 };
  for (const o of outcomes) c[o.status]++;
  return c;
}

export function summary(r: SuiteReport): string {
  const c = counts(r.outcomes);
  return `${r.outcomes.length} cases against ${r.pluginDir}: ${c.PASS} passed, ${c.FAIL} failed, ${c.WARN} warned (SHOULD not met), ${c.SKIP} skipped in ${(r.ms / 1000).toFixed(1)} s`;
}

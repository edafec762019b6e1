/** Small statistics and timing helpers shared by the benchmarks. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length ? (s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2) : NaN;
};

/** Wall time of one synchronous process run, in ms; throws when it fails. */
export function timeRun(cmd: string, args: string[], opts: SpawnSyncOptions = {}): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stdout}${r.stderr}`);
  return ms;
}

/** Runs the named variants interleaved (a, b, a, b, ...) so machine drift hits all alike; returns samples per name. */
export function interleave(variants: Record<string, () => number>, rounds: number, warmup = 2): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < warmup + rounds; i++) {
    for (const [k, f] of Object.entries(variants)) {
      const ms = f();
      if (i >= warmup) out[k]!.push(ms);
    }
  }
  return out;
}

export function table(rows: Array<Record<string, string | number>>): string {
  if (!rows.length) return '';
  const cols = Object.keys(rows[0]!);
  const cell = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c] ?? '').length)));
  const line = (vals: string[]) => '| ' + vals.map((v, i) => v.padEnd(width[i]!)).join(' | ') + ' |';
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c] ?? ''))))].join('\n');
}

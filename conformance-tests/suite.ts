/**
 * Runs the cases against one plugin directory: probe what it claims, then each case in its own throwaway
 * environment, sequentially (the machines have 2 cores and the plugins take locks), timing each.
 */
import { allCases } from './cases';
import { Env } from './env';
import { Fail, Skip, type Case, type Outcome } from './harness';
import { probe, type PluginSet } from './probe';

export interface SuiteOptions {
  pluginDir: string;
  filter?: RegExp;
  onOutcome?: (o: Outcome, c: Case) => void;
}

export interface SuiteReport {
  pluginDir: string;
  versions: Record<string, string[]>;
  outcomes: Outcome[];
  ms: number;
}

async function runCase(c: Case, set: PluginSet): Promise<Omit<Outcome, 'id' | 'ms'>> {
  const missing = c.plugins.filter((p) => !set.has(p));
  if (missing.length) return { status: 'SKIP', reason: `no executable ${missing.join(', ')} in ${set.dir}` };
  let env: Env | undefined;
  try {
    env = await Env.create(set);
    await c.run(env, set);
    return { status: 'PASS' };
  } catch (e) {
    if (e instanceof Skip) return { status: 'SKIP', reason: e.message };
    const reason = e instanceof Fail ? e.message : `${(e as Error)?.message ?? e}`;
    return { status: c.level === 'should' ? 'WARN' : 'FAIL', reason };
  } finally {
    await env?.cleanup();
  }
}

export async function runSuite(o: SuiteOptions): Promise<SuiteReport> {
  const start = Date.now();
  const set = await probe(o.pluginDir);
  const outcomes: Outcome[] = [];
  for (const c of allCases) {
    if (o.filter && !o.filter.test(c.id)) continue;
    const t = Date.now();
    const r = await runCase(c, set);
    const outcome: Outcome = { id: c.id, ms: Date.now() - t, ...r };
    outcomes.push(outcome);
    o.onOutcome?.(outcome, c);
  }
  const versions: Record<string, string[]> = {};
  for (const p of ['bridge', 'host-local', 'portmap']) if (set.has(p)) versions[p] = set.get(p)!.versions;
  return { pluginDir: o.pluginDir, versions, outcomes, ms: Date.now() - start };
}

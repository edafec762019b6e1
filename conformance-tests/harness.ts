/**
 * The vocabulary of the suite: a case, what it needs from the plugin set, how it ends. A case throws `Skip`
 * when the plugin set does not claim what it checks (by its VERSION answer or by probing) and `Fail` (or any
 * error) when the plugin breaks a rule. Cases graded `should` test a SHOULD of the spec: breaking one is a WARN,
 * which fails the run only with --strict.
 */
import type { Env } from './env';
import type { PluginSet } from './probe';

export type Status = 'PASS' | 'FAIL' | 'WARN' | 'SKIP';
export type Level = 'must' | 'should';

export interface Case {
  /** `<area>/<what>`, unique; --filter matches it. */
  id: string;
  /** Where the rule comes from: a SPEC.md section or the plugin's documentation. */
  basis: string;
  level: Level;
  /** Plugin executables the case runs; missing ones skip the case. */
  plugins: string[];
  run(env: Env, set: PluginSet): Promise<void>;
}

export interface Outcome {
  id: string;
  status: Status;
  ms: number;
  /** Why it failed or was skipped. */
  reason?: string;
}

export class Skip extends Error {}
export class Fail extends Error {}

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Fail(msg);
}

export const show = (x: unknown) => {
  const s = typeof x === 'string' ? x : x === undefined ? 'undefined' : JSON.stringify(x);
  return s.length > 400 ? `${s.slice(0, 400)}...` : s;
};

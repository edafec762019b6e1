/** CNI_ARGS: "K1=V1;K2=V2". Keys are case-sensitive; unknown keys are an error unless IgnoreUnknown is set. */
import { envError } from './errors';

export type CniArgs = Map<string, string>;

export function parseCniArgs(raw: string | undefined): CniArgs {
  const out: CniArgs = new Map();
  if (!raw) return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw envError(`CNI_ARGS: invalid pair "${pair}" (want KEY=VALUE)`);
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

export const ignoreUnknown = (args: CniArgs) => ['1', 'true', 'True', 'TRUE'].includes(args.get('IgnoreUnknown') ?? '');

/**
 * Picks the keys a plugin understands. Unknown keys fail with code 4 unless IgnoreUnknown is set,
 * as the Go plugins' LoadArgs does. K8S_* keys and IgnoreUnknown itself are always understood.
 */
export function pickArgs<K extends string>(args: CniArgs, known: readonly K[]): Partial<Record<K, string>> {
  const out: Partial<Record<K, string>> = {};
  const unknown: string[] = [];
  for (const [k, v] of args) {
    if ((known as readonly string[]).includes(k)) out[k as K] = v;
    else if (k !== 'IgnoreUnknown' && !k.startsWith('K8S_')) unknown.push(k);
  }
  if (unknown.length && !ignoreUnknown(args)) {
    throw envError(`CNI_ARGS: unknown key(s) ${unknown.join(', ')} (set IgnoreUnknown=1 to allow them)`);
  }
  return out;
}

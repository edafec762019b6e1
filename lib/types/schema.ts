/**
 * Turning zod issues into CNI errors that name the field and the value, so every config error reads
 * "<where>.<field>: <problem> (got <value>)".
 */
import * as z from 'zod/mini';
import { configError, CniError } from '../errors';

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

export function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(root)';
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function issueText(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'too_small':
      return `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}${issue.origin === 'string' || issue.origin === 'array' ? ' in length' : ''}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}${issue.origin === 'string' || issue.origin === 'array' ? ' in length' : ''}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return `unknown field(s) ${issue.keys.join(', ')}`;
    default:
      return issue.message && issue.message !== 'Invalid input' ? issue.message : `invalid (${issue.code})`;
  }
}

/** Parses `input` with `schema`; on failure throws code 7 (or `code`) naming the first bad field and its value. */
export function parseWith<S extends z.ZodMiniType>(schema: S, input: unknown, where = '', code?: number): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const first = issues[0]!;
  const msg = `${formatPath(where, first.path)}: ${issueText(first)} (got ${describe(valueAt(input, first.path))})`;
  const details = issues.length > 1 ? issues.slice(1).map((i) => `${formatPath(where, i.path)}: ${issueText(i)}`).join('; ') : '';
  const err = configError(msg, details);
  return code ? (() => { throw new CniError(code, err.message, err.details); })() : (() => { throw err; })();
}

/** Custom check messages: `refine` helpers whose message becomes the issue text. */
export const msg = (message: string) => ({ error: message });

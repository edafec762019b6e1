/** CNI spec versions and the version rules of SPEC.md 1.1.0. */
import { versionError } from './errors';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

/** Compares dotted versions numerically; returns <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export const versionAtLeast = (v: string, min: string) => compareVersions(v, min) >= 0;

export function isSupportedVersion(v: string, supported: readonly string[] = SUPPORTED_VERSIONS): v is CniVersion {
  return supported.includes(v);
}

/** The spec's command gates: CHECK needs 0.4.0, STATUS and GC need 1.1.0. */
export const COMMAND_MIN_VERSION: Record<string, string> = { CHECK: '0.4.0', STATUS: '1.1.0', GC: '1.1.0' };

export function checkVersion(command: string, v: string, supported: readonly string[] = SUPPORTED_VERSIONS): CniVersion {
  if (!isSupportedVersion(v, supported)) {
    throw versionError(
      `incompatible CNI versions: config is "${v}", plugin supports [${supported.join(', ')}]`,
    );
  }
  const min = COMMAND_MIN_VERSION[command];
  if (min && !versionAtLeast(v, min)) {
    throw versionError(`config version "${v}" does not allow ${command}: it needs cniVersion ${min} or later`);
  }
  return v;
}

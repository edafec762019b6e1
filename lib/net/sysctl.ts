/**
 * sysctls. In our own namespace we write /proc/sys directly (no process). /proc/sys/net shows the namespace of
 * the process that opens it, so another namespace's sysctls are written by a shell inside it; `sysctlScript`
 * builds that script so a caller can prepend it to the one process it already runs there.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ioError } from '../errors';
import { rehearsal } from '../rehearsal';

/** "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward" (interface names may hold dots: pass a path then). */
export const sysctlPath = (key: string) => (key.startsWith('/') ? key : `/proc/sys/${key.replace(/\./g, '/')}`);

export function setSysctl(key: string, value: string | number): void {
  const p = sysctlPath(key);
  if (rehearsal.on) return;
  try {
    writeFileSync(p, String(value));
  } catch (e) {
    throw ioError(`cannot set ${p} to ${value}: ${(e as Error).message}`);
  }
}

export function getSysctl(key: string): string | null {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch {
    return null;
  }
}

/** Sets a sysctl only when it differs (a write to ip_forward, for one, resets other settings in the kernel). */
export function ensureSysctl(key: string, value: string | number): void {
  if (getSysctl(key) !== String(value)) setSysctl(key, value);
}

/** A POSIX shell fragment that writes the given sysctls (paths under /proc/sys), failing on the first error. */
export function sysctlScript(entries: ReadonlyArray<readonly [string, string | number]>): string {
  return entries.map(([k, v]) => `echo ${String(v).replace(/[^\w.:-]/g, '')} > ${sysctlPath(k).replace(/[^\w./-]/g, '')}`).join(' && ');
}

/** MAC addresses: validation of requested ones, and random ones we assign so we need not read them back. */
import { randomBytes } from 'node:crypto';

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Why `s` cannot be an interface's MAC, or null when it can. */
export function macProblem(s: string): string | null {
  if (!MAC.test(s)) return 'must be a MAC address like 02:42:c0:00:02:05';
  if (parseInt(s.slice(0, 2), 16) & 1) return 'must be a unicast address (the first octet is odd: multicast)';
  if (/^(00:){5}00$/.test(s)) return 'must not be all zeros';
  return null;
}

export const normalizeMac = (s: string) => s.toLowerCase();

/** A random locally administered unicast MAC, as the kernel picks for a veth. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** MAC addresses: validation of requested ones, and random ones we assign so we need not read them back. */
import { closeSync, openSync, readSync } from 'node:fs';

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Why `s` cannot be an interface's MAC, or null when it can. */
export function macProblem(s: string): string | null {
  if (!MAC.test(s)) return 'must be a MAC address like 02:42:c0:00:02:05';
  if (parseInt(s.slice(0, 2), 16) & 1) return 'must be a unicast address (the first octet is odd: multicast)';
  if (/^(00:){5}00$/.test(s)) return 'must not be all zeros';
  return null;
}

export const normalizeMac = (s: string) => s.toLowerCase();

/**
 * `n` random bytes from the kernel's generator. Read from /dev/urandom rather than through node:crypto, which
 * would bring OpenSSL up for them (~3 M instructions per plugin call; build/node-patch.cjs, item 6).
 */
function kernelRandom(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    if (readSync(fd, b, 0, n, null) !== n) throw new Error('short read from /dev/urandom');
  } finally {
    closeSync(fd);
  }
  return b;
}

/** A random locally administered unicast MAC, as the kernel picks for a veth. */
export function randomMac(): string {
  const b = kernelRandom(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

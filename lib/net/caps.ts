/** Whether this process may change links and addresses, read from /proc (no process). */
import { readFileSync } from 'node:fs';

const CAP_NET_ADMIN = 12n;

export function hasNetAdmin(): boolean {
  try {
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return eff === undefined || ((BigInt(`0x${eff}`) >> CAP_NET_ADMIN) & 1n) === 1n;
  } catch {
    return true; // no /proc: nothing to tell, let ADD find out
  }
}

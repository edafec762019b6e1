/** Picks a firewall backend: the one configured, else iptables unless only nftables is installed (as the Go plugins). */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { BackendName, FirewallDriver } from './driver';
import { iptablesDriver } from './iptables';
import { nftablesDriver } from './nftables';

/** Looks a command up on PATH without starting a process (the hot path cannot afford `iptables --version`). */
export function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

export function defaultBackend(): BackendName {
  return !onPath('iptables-restore') && onPath('nft') ? 'nftables' : 'iptables';
}

export function firewall(name?: BackendName): FirewallDriver {
  return (name ?? defaultBackend()) === 'nftables' ? nftablesDriver : iptablesDriver;
}

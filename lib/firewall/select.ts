/** Picks a firewall backend: the one configured, else iptables unless only nftables is installed (as the Go plugins). */
import { join } from 'node:path';
import { isExecutableFile } from '../executable';
import type { BackendName, FirewallDriver } from './driver';
import { iptablesDriver } from './iptables';
import { nftablesDriver } from './nftables';

/** Looks a command up on PATH without starting a process (the hot path cannot afford `iptables --version`). */
export function onPath(cmd: string): boolean {
  return (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((dir) => isExecutableFile(join(dir, cmd)));
}

export function defaultBackend(): BackendName {
  return !onPath('iptables-restore') && onPath('nft') ? 'nftables' : 'iptables';
}

export function firewall(name?: BackendName): FirewallDriver {
  return (name ?? defaultBackend()) === 'nftables' ? nftablesDriver : iptablesDriver;
}

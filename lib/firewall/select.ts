/** Picks a firewall backend: the one configured, else iptables unless only nftables is installed (as the Go plugins). */
import { findOnPath } from '../executable';
import type { BackendName, FirewallDriver } from './driver';
import { iptablesDriver } from './iptables';
import { nftablesDriver } from './nftables';

/** Whether a command is on PATH, without starting a process. */
export const onPath = (cmd: string): boolean => findOnPath(cmd) !== undefined;

export function defaultBackend(): BackendName {
  return !onPath('iptables-restore') && onPath('nft') ? 'nftables' : 'iptables';
}

export function firewall(name?: BackendName): FirewallDriver {
  return (name ?? defaultBackend()) === 'nftables' ? nftablesDriver : iptablesDriver;
}

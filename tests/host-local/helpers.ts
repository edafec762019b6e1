/** Shared pieces of the host-local integration tests: a config builder and plugin runners for ours and Go's. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPath, PLUGIN_DIR, type PluginResult, type PluginRun, type Sandbox } from '../helpers/netns';

/** The Go reference plugins (Debian's containernetworking-plugins). */
export const GO_DIR = '/usr/lib/cni';

export interface NetOpts {
  name?: string;
  cniVersion?: string;
  ipam: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

export function netConf(o: NetOpts): Record<string, unknown> {
  return { cniVersion: o.cniVersion ?? '1.1.0', name: o.name ?? 'hlnet', type: 'bridge', ipam: { type: 'host-local', ...o.ipam }, ...o.extra };
}

/** Runs host-local (ours by default, or the Go plugin with dir = GO_DIR) with a container netns path. */
export function hostLocal(s: Sandbox, run: Omit<PluginRun, 'netns'> & { netns?: string }, dir = PLUGIN_DIR): Promise<PluginResult> {
  return s.plugin('host-local', { netns: run.netns ?? netnsPath('unused'), ...run }, dir);
}

/** The reservation files (names that are addresses) in a network directory. */
export function reservations(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => /^[0-9a-f.:]+$/.test(n) && (n.includes(':') || /^\d+\.\d+\.\d+\.\d+$/.test(n)))
      .sort();
  } catch {
    return [];
  }
}

export const netDir = (s: Sandbox, name = 'hlnet') => join(s.dir, name);

/** "192.0.2.5/24" -> "192.0.2.5". */
export const addrOf = (cidr: string) => cidr.slice(0, cidr.indexOf('/'));

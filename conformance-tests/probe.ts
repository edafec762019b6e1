/**
 * What a plugin directory claims: which of the plugins the suite knows are there, and the versions each one
 * lists in its VERSION answer. Cases skip on this, never on the directory's name.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../tests/helpers/netns';

export const KNOWN_PLUGINS = ['bridge', 'host-local', 'portmap'] as const;

export interface PluginInfo {
  /** supportedVersions from VERSION; empty when VERSION did not answer. */
  versions: string[];
  /** The raw VERSION exchange, for the version cases. */
  version: { code: number; stdout: string; stderr: string };
}

export class PluginSet {
  constructor(
    readonly dir: string,
    private readonly info: Map<string, PluginInfo>,
  ) {}

  has(name: string): boolean {
    return this.info.has(name);
  }
  get(name: string): PluginInfo | undefined {
    return this.info.get(name);
  }
  supports(name: string, version: string): boolean {
    return this.info.get(name)?.versions.includes(version) ?? false;
  }
  /** The highest version every named plugin lists at or above `min`, or undefined. */
  common(names: string[], min = '0.0.0'): string | undefined {
    const all = names.map((n) => this.info.get(n)?.versions ?? []);
    const shared = (all[0] ?? []).filter((v) => all.every((vs) => vs.includes(v)) && cmp(v, min) >= 0);
    return shared.sort(cmp).at(-1);
  }
}

export function cmp(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export async function probe(dir: string): Promise<PluginSet> {
  const info = new Map<string, PluginInfo>();
  for (const name of KNOWN_PLUGINS) {
    const file = join(dir, name);
    if (!executable(file)) continue;
    const r = await sh(file, [], { input: '{"cniVersion":"1.0.0"}', env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' } });
    let versions: string[] = [];
    try {
      const j = JSON.parse(r.stdout);
      if (Array.isArray(j.supportedVersions)) versions = j.supportedVersions.filter((v: unknown) => typeof v === 'string');
    } catch {
      // Left empty: the version case reports the bad answer.
    }
    info.set(name, { versions, version: r });
  }
  return new PluginSet(dir, info);
}

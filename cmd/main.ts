/**
 * The one executable: dispatches on the name it was started under (dist/bridge, dist/host-local, ... are links
 * to it), or on its first argument (`cni bridge`). It registers the plugins that live in it so that delegation
 * to them runs in-process.
 */
import { basename } from 'node:path';
import { registerInProcess } from '../lib/invoke';
import { pluginMain, type Plugin, type ProcessIO } from '../lib/skel';
import { plugin as bridge } from '../plugins/bridge';
import { plugin as portmap } from '../plugins/portmap';
import { plugin as hostLocal } from '../ipam/host-local';
import { tools } from './tools';

export const PLUGINS: Record<string, Plugin> = { bridge, 'host-local': hostLocal, portmap };

/** `io` stands in for the process's own stdin, environment, stdout and exit (the warm-up's). */
export async function main(argv0: string, argv: string[], io?: ProcessIO): Promise<void> {
  for (const [name, p] of Object.entries(PLUGINS)) registerInProcess(name, p);
  let name = basename(argv0);
  let args = argv;
  if (!(name in PLUGINS) && !(name in tools)) {
    name = args[0] ?? '';
    args = args.slice(1);
  }
  const plugin = PLUGINS[name];
  if (plugin) return pluginMain(plugin, io);
  const tool = tools[name];
  if (tool) {
    process.exitCode = await tool(args);
    return;
  }
  process.stderr.write(
    `usage: one of ${[...Object.keys(PLUGINS), ...Object.keys(tools)].join(', ')} (as the executable's name, or as its first argument)\n`,
  );
  process.exitCode = 2;
}

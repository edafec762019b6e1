/**
 * What each plugin of a list receives (libcni buildOneConfig/injectRuntimeConfig): its own config with the
 * list's name and version, the previous result, and `runtimeConfig` holding only the capability arguments
 * the plugin declared in `capabilities`. The environment carries the CNI_* variables of the attachment.
 */
import type { Command } from '../skel';
import type { NetworkConfigList, PluginConf } from './conf';

/** One attachment as the runtime describes it (libcni RuntimeConf). */
export interface RuntimeConf {
  containerID: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as ordered pairs. */
  args?: [string, string][];
  /** Capability arguments (portMappings, ips, mac, ...); each plugin gets the ones it declared. */
  capabilityArgs?: Record<string, unknown>;
}

/** The capability arguments a plugin asked for with `capabilities: {<name>: true}`. */
export function runtimeConfigFor(plugin: PluginConf, capabilityArgs: Record<string, unknown> = {}): Record<string, unknown> {
  const rc: Record<string, unknown> = {};
  for (const [cap, enabled] of Object.entries(plugin.capabilities ?? {})) {
    if (enabled === true && Object.hasOwn(capabilityArgs, cap)) rc[cap] = capabilityArgs[cap];
  }
  return rc;
}

/**
 * The stdin of one plugin. Keys the runtime injects replace the plugin's own; a `runtimeConfig` written in the
 * file is replaced only when the runtime has capability arguments for the plugin (as libcni does).
 */
export function pluginConfig(
  list: Pick<NetworkConfigList, 'name' | 'cniVersion'>,
  plugin: PluginConf,
  opts: { prevResult?: unknown; rt?: RuntimeConf; extra?: Record<string, unknown> } = {},
): Buffer {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (opts.prevResult !== undefined) conf.prevResult = opts.prevResult;
  if (opts.rt) {
    const rc = runtimeConfigFor(plugin, opts.rt.capabilityArgs);
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
  }
  Object.assign(conf, opts.extra);
  return Buffer.from(JSON.stringify(conf));
}

export const formatCniArgs = (args: readonly [string, string][] = []) => args.map(([k, v]) => `${k}=${v}`).join(';');

/** The plugin's environment: ours, with every CNI_* variable set for this call (empty ones included, as libcni does). */
export function pluginEnv(command: Command, rt: RuntimeConf | undefined, path: readonly string[], base: Record<string, string | undefined>): Record<string, string | undefined> {
  return {
    ...base,
    CNI_COMMAND: command,
    CNI_CONTAINERID: rt?.containerID ?? '',
    CNI_NETNS: rt?.netns ?? '',
    CNI_ARGS: formatCniArgs(rt?.args),
    CNI_IFNAME: rt?.ifname ?? '',
    CNI_PATH: path.join(':'),
  };
}

/**
 * Runs one plugin of a list: finds it on CNI_PATH, runs it (in this process when it is our own executable,
 * else as a child through lib/exec), and decodes what it printed. A plugin's error keeps its code; the
 * message says which plugin failed and in which command, as libcni's "plugin type=... failed (add)".
 */
import { run } from '../exec';
import { decodePluginOutput, findInPath, inProcessPlugin } from '../invoke';
import { runPlugin, type Command } from '../skel';
import type { PluginConf } from './conf';

/** Long enough for any honest plugin; a hung one must not hang the runtime forever. */
const PLUGIN_TIMEOUT_MS = 5 * 60_000;

export interface PluginCall {
  plugin: PluginConf;
  command: Command;
  stdin: Buffer;
  env: Record<string, string | undefined>;
  path: readonly string[];
  /** Index in the list, for messages. */
  index: number;
}

/** As libcni names a plugin in errors (`plugin type="portmap"`), plus where it sits in the list. */
export const describePlugin = (c: Pick<PluginCall, 'plugin' | 'index'>) => `plugin type="${c.plugin.type}" (plugins[${c.index}])`;

/** libcni's verbs in "failed (<verb>)". */
const VERB: Record<Command, string> = { ADD: 'add', DEL: 'delete', CHECK: 'check', STATUS: 'status', GC: 'gc', VERSION: 'version' };

async function runFile(file: string, c: PluginCall): Promise<{ code: number; stdout: string; stderr: string }> {
  const own = inProcessPlugin(file);
  if (own) {
    let stderr = '';
    const out = await runPlugin(own, { stdin: c.stdin, env: c.env, stderr: (t) => ((stderr += t), process.stderr.write(t)) });
    return { code: out.exitCode, stdout: out.stdout, stderr };
  }
  const r = await run(file, [], { input: c.stdin, env: c.env, allowFailure: true, timeoutMs: PLUGIN_TIMEOUT_MS });
  // Plugins' diagnostics belong to whoever runs the runtime, as libcni copies them to its stderr.
  if (r.stderr) process.stderr.write(r.stderr);
  return r;
}

/** Runs the plugin; returns its parsed stdout (the result for ADD, undefined when it printed nothing). */
export async function callPlugin(c: PluginCall): Promise<unknown> {
  const file = findInPath(c.plugin.type, c.path, `plugins[${c.index}].type`);
  const who = `${describePlugin(c)} failed (${VERB[c.command]})`;
  const { code, stdout, stderr } = await runFile(file, c);
  return decodePluginOutput(who, code, stdout, stderr);
}

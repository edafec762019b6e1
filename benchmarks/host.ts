/**
 * The benchmark's "host": a throwaway network namespace that the whole benchmark process lives in, so that plugins
 * are exec'd directly, as a runtime execs them.
 *
 * Why not `ip netns exec HOST plugin` per call: each one clones the mount namespace and remounts /sys, which costs
 * ~3 ms idle and grows with the mounts on the machine (every `ip netns add` is one: +4 ms per call at 1,500
 * namespaces). That is the harness's cost, not the plugin's, and it would hide how a plugin itself grows.
 *
 * `inHost(name)` creates the namespace and re-runs this script under `ip netns exec` (once), then returns false
 * in the parent after the child ended (exit code passed on), and true inside. Namespaces the child creates are
 * visible to it and to the plugins it starts; the parent removes the host namespace at the end.
 */
import { spawnSync } from 'node:child_process';

const INSIDE = 'CNI_BENCH_HOST_NS';

export function inHost(name: string): boolean {
  if (process.env[INSIDE] === name) return true;
  const made = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`ip netns add ${name}: ${made.stderr.trim()}`);
  let code = 1;
  try {
    spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', name, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, [INSIDE]: name },
    });
    code = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
  process.exitCode = code;
  return false;
}

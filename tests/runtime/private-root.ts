/**
 * Shell preambles for running a container runtime inside a throwaway network namespace (`ip netns exec`, which
 * also gives a private mount namespace) without touching the machine: the directories runtimes write to are
 * overlaid with temp dirs (nothing written reaches the real ones, and all vanishes with the mount namespace),
 * and the cgroup hierarchies hidden by `ip netns exec`'s fresh /sys are mounted again so runc finds them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Which of the runtime's prerequisites are missing (empty when it can run here). */
export function missing(commands: string[]): string[] {
  const out = commands.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (process.getuid?.() !== 0) out.push('root');
  if (!/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))) out.push('overlayfs in the kernel');
  return out;
}

/** Mount commands recreating this machine's cgroup mounts under /sys/fs/cgroup. */
export function cgroupMounts(): string[] {
  const lines: string[] = [];
  for (const l of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]!;
    const [fstype, , superOpts = ''] = post.split(' ');
    if (!mountPoint.startsWith('/sys/fs/cgroup')) continue;
    const opts = superOpts.split(',').filter((o) => o !== 'rw' && o !== 'ro');
    if (fstype === 'tmpfs') lines.push(`mount -t tmpfs -o mode=755 cgroup_root ${mountPoint}`);
    else if (fstype === 'cgroup2') lines.push(`mkdir -p ${mountPoint}`, `mount -t cgroup2 cgroup2 ${mountPoint}`);
    else if (fstype === 'cgroup') {
      const o = opts.some((x) => x.startsWith('name=')) && !opts.some((x) => !x.startsWith('name=') && x !== 'xattr') ? ['none', ...opts] : opts;
      lines.push(`mkdir -p ${mountPoint}`, `mount -t cgroup -o ${o.join(',')} cgroup ${mountPoint}`);
    }
  }
  return lines;
}

/** Overlays `dirs` with upper layers under `work`, so writes there stay private and temporary. */
export function overlays(work: string, dirs: string[]): string[] {
  return dirs.flatMap((d) => {
    const up = join(work, `ov${d.replace(/\//g, '_')}`);
    return [`mkdir -p ${up}/u ${up}/w`, `mount -t overlay overlay -o lowerdir=${d},upperdir=${up}/u,workdir=${up}/w ${d}`];
  });
}

/**
 * Preamble: private overlays over /etc, /opt, /var/lib and /run; `netconf` bound on /etc/cni/net.d and `plugins`
 * on /opt/cni/bin (the fixed paths runtimes use); cgroups mounted again.
 */
export function privateRoot(work: string, netconf: string, plugins: string): string {
  return [
    'set -eu',
    ...overlays(work, ['/etc', '/opt', '/var/lib', '/run']),
    'mkdir -p /etc/cni/net.d /opt/cni/bin',
    `mount --bind ${netconf} /etc/cni/net.d`,
    `mount --bind ${plugins} /opt/cni/bin`,
    ...cgroupMounts(),
  ].join('\n');
}

// Makes a fresh clone runnable: installs npm dependencies when node_modules is missing, and (as root, on
// Debian) the system tools the plugins drive when they are missing. Cheap when everything is there.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  process.stderr.write('ensure-deps: installing npm dependencies (npm ci)\n');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
}

const tools = {
  ip: 'iproute2',
  iptables: 'iptables',
  nft: 'nftables',
  conntrack: 'conntrack',
  flock: 'util-linux',
  nsenter: 'util-linux',
  busybox: 'busybox-static',
  // `--tests`: the VM for the cases this kernel cannot run (tests/vm/run-in-vm.sh), strace for the file traces.
  ...(process.argv.includes('--tests') ? { 'qemu-system-x86_64': 'qemu-system-x86', xz: 'xz-utils', strace: 'strace' } : {}),
};
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const missing = [...new Set(Object.entries(tools).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg))];
if (!existsSync('/usr/lib/cni/bridge')) missing.push('containernetworking-plugins');
if (missing.length) {
  if (process.getuid?.() === 0 && has('apt-get')) {
    process.stderr.write(`ensure-deps: installing ${missing.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  } else {
    process.stderr.write(`ensure-deps: missing ${missing.join(', ')}; install them (Debian packages) and run again as root\n`);
  }
}

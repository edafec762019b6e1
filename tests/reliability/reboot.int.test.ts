/**
 * Reboots: host-local's `reclaimAfterReboot` releases reservations made in an earlier boot on the first ADD after
 * a reboot. The boot is faked by bind-mounting a file over /proc/sys/kernel/random/boot_id in a private mount
 * namespace around each plugin run.
 */
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLUGIN_DIR, sh, withSandbox } from '../helpers/netns';

async function hostLocal(dir: string, bootId: string, command: string, id: string, ipam: Record<string, unknown>) {
  const boot = join(dir, `boot-${bootId}`);
  writeFileSync(boot, `${bootId}\n`);
  const script = `mount --bind ${boot} /proc/sys/kernel/random/boot_id && exec ${join(PLUGIN_DIR, 'host-local')}`;
  const conf = { cniVersion: '1.0.0', name: 'rb', type: 'host-local', ipam: { type: 'host-local', ranges: [[{ subnet: '203.0.113.0/24' }]], dataDir: join(dir, 'data'), ...ipam } };
  const r = await sh('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    input: JSON.stringify(conf),
    env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/dev/null', CNI_IFNAME: 'eth0', CNI_PATH: PLUGIN_DIR },
  });
  if (r.code !== 0) throw new Error(`host-local ${command} ${id}: ${r.stdout}${r.stderr}`);
  return r.stdout ? JSON.parse(r.stdout) : undefined;
}

const reservations = (dir: string) =>
  readdirSync(join(dir, 'data', 'rb'))
    .filter((f) => /^\d/.test(f))
    .sort();

test.each([
  [true, 'released'],
  [false, 'kept'],
])('reclaimAfterReboot=%s: reservations of an earlier boot are %s', async (reclaim) => {
  await withSandbox(async (s) => {
    const opts = { reclaimAfterReboot: reclaim };
    await hostLocal(s.dir, 'boot-a', 'ADD', 'before-1', opts);
    await hostLocal(s.dir, 'boot-a', 'ADD', 'before-2', opts);
    expect(reservations(s.dir)).toHaveLength(2);
    // Same boot: nothing is reclaimed.
    await hostLocal(s.dir, 'boot-a', 'ADD', 'same-boot', opts);
    expect(reservations(s.dir)).toHaveLength(3);
    // Files made in an earlier boot are older than this boot's start; make them so (boot_id alone is faked).
    const old = new Date('2020-01-01T00:00:00Z');
    for (const f of reservations(s.dir)) utimesSync(join(s.dir, 'data', 'rb', f), old, old);
    // "Reboot": the first ADD of the new boot reclaims everything of the old one when the option is on.
    const after = await hostLocal(s.dir, 'boot-b', 'ADD', 'after-1', opts);
    expect(after.ips).toHaveLength(1);
    expect(reservations(s.dir)).toHaveLength(reclaim ? 1 : 4);
    // Only the first ADD after the reboot reclaims: the new boot's reservations stay.
    await hostLocal(s.dir, 'boot-b', 'ADD', 'after-2', opts);
    expect(reservations(s.dir)).toHaveLength(reclaim ? 2 : 5);
  });
});

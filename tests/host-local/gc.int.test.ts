/** GC keeps exactly the valid attachments; reclaimAfterReboot releases what an earlier boot left. */
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { hostLocal, netConf, netDir, reservations } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;

maybe('host-local GC and reclaim', () => {
  test('GC releases every reservation not in cni.dev/valid-attachments and reports it on stderr', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ ipam: { subnet: '192.0.2.64/26', dataDir: s.dir } });
      const atts = [
        ['keep-a', 'eth0'],
        ['keep-a', 'eth1'],
        ['gone-b', 'eth0'],
        ['keep-c', 'eth0'],
        ['gone-d', 'net1'],
      ] as const;
      const got: Record<string, string> = {};
      for (const [containerID, ifname] of atts) {
        const r = await hostLocal(s, { command: 'ADD', conf, containerID, ifname });
        expect(r.code).toBe(0);
        got[`${containerID}/${ifname}`] = r.json.ips[0].address.split('/')[0];
      }
      // Legacy ID-only files: one of a valid container (kept), one of a gone container (released).
      writeFileSync(join(netDir(s), '192.0.2.120'), 'keep-c', { mode: 0o600 });
      writeFileSync(join(netDir(s), '192.0.2.121'), 'gone-e', { mode: 0o600 });
      // Not reservations: never touched.
      writeFileSync(join(netDir(s), 'notes.txt'), 'gone-b\r\neth0');

      const valid = [
        { containerID: 'keep-a', ifname: 'eth0' },
        { containerID: 'keep-a', ifname: 'eth1' },
        { containerID: 'keep-c', ifname: 'eth0' },
        // Valid but holding nothing here: harmless.
        { containerID: 'elsewhere', ifname: 'eth0' },
      ];
      const r = await hostLocal(s, { command: 'GC', conf: { ...conf, 'cni.dev/valid-attachments': valid } });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      const kept = [got['keep-a/eth0'], got['keep-a/eth1'], got['keep-c/eth0'], '192.0.2.120'].sort();
      expect(reservations(netDir(s))).toEqual(kept);
      expect(readFileSync(join(netDir(s), 'notes.txt'), 'latin1')).toBe('gone-b\r\neth0');
      for (const gone of [got['gone-b/eth0'], got['gone-d/net1'], '192.0.2.121']) expect(r.stderr).toContain(gone);
      expect(r.stderr).toContain('released 3');

      // An empty list releases everything; a GC without the key releases nothing.
      expect((await hostLocal(s, { command: 'GC', conf })).code).toBe(0);
      expect(reservations(netDir(s))).toEqual(kept);
      expect((await hostLocal(s, { command: 'GC', conf: { ...conf, 'cni.dev/valid-attachments': [] } })).code).toBe(0);
      expect(reservations(netDir(s))).toEqual([]);
    });
  });

  test('reclaimAfterReboot releases reservations older than this boot, once, and keeps this boot’s', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ ipam: { subnet: '192.0.2.128/26', dataDir: s.dir, reclaimAfterReboot: true } });
      const plain = netConf({ ipam: { subnet: '192.0.2.128/26', dataDir: s.dir } });
      // A reservation made in this boot (by a plugin that does not reclaim), and two made "before the reboot".
      const now = await hostLocal(s, { command: 'ADD', conf: plain, containerID: 'this-boot' });
      expect(now.code).toBe(0);
      for (const [ip, owner] of [
        ['192.0.2.150', 'old-1\r\neth0'],
        ['192.0.2.151', 'old-2\r\neth0'],
      ]) {
        writeFileSync(join(netDir(s), ip!), owner!, { mode: 0o600 });
        utimesSync(join(netDir(s), ip!), new Date('2001-01-01'), new Date('2001-01-01'));
      }
      writeFileSync(join(netDir(s), 'boot_id'), 'an-earlier-boot');

      const first = await hostLocal(s, { command: 'ADD', conf, containerID: 'after-reboot' });
      expect(first.code).toBe(0);
      expect(first.stderr).toContain('192.0.2.150');
      expect(reservations(netDir(s))).toEqual([now.json.ips[0].address.split('/')[0], first.json.ips[0].address.split('/')[0]].sort());
      const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
      expect(readFileSync(join(netDir(s), 'boot_id'), 'utf8')).toBe(bootId);

      // Same boot: old-looking files are no longer reclaimed (the check runs once per boot).
      writeFileSync(join(netDir(s), '192.0.2.160'), 'old-3\r\neth0', { mode: 0o600 });
      utimesSync(join(netDir(s), '192.0.2.160'), new Date('2001-01-01'), new Date('2001-01-01'));
      const second = await hostLocal(s, { command: 'ADD', conf, containerID: 'later' });
      expect(second.code).toBe(0);
      expect(reservations(netDir(s))).toContain('192.0.2.160');
    });
  });
});

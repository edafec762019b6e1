/**
 * A network over INDEX_MIN_NAMES files, where our owner journal stands in for reading every file: it must never
 * hide what the Go plugin or a person changed behind its back.
 */
import { appendFileSync, existsSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { INDEX_MIN_NAMES, JOURNAL_FILE } from '../../ipam/host-local/journal';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { addrOf, GO_DIR, hostLocal, netConf, netDir, reservations } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;
const PREFILLED = INDEX_MIN_NAMES + 500;

maybe('host-local owner journal in a large network', () => {
  test('duplicates, releases and CHECK stay exact across Go reservations, Go releases and hand-made files', async () => {
    await withSandbox(async (s) => {
      // The Go plugin here (1.1.1) speaks up to 1.0.0.
      const conf = netConf({ cniVersion: '1.0.0', ipam: { subnet: '2001:db8:44::/112', dataDir: s.dir } });
      const dir = netDir(s);
      // Seed with the Go plugin (creates the directory), then fill past the journal threshold.
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'seed' }, GO_DIR)).code).toBe(0);
      for (let i = 3; i < PREFILLED; i++) writeFileSync(join(dir, `2001:db8:44::${i.toString(16)}`), `pre-${i}\r\neth0`, { mode: 0o600 });

      const a = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-a' });
      expect(a.code).toBe(0);
      const x = addrOf(a.json.ips[0].address);
      expect(existsSync(join(dir, JOURNAL_FILE))).toBe(true);
      // The journal answers the duplicate check.
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-a' })).json.msg).toContain('duplicate allocation');

      // Behind the journal's back: Go releases A and hands the very same address to B.
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-a' }, GO_DIR)).code).toBe(0);
      const b = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-b', args: `IP=${x}` }, GO_DIR);
      expect(addrOf(b.json.ips[0].address)).toBe(x);
      expect(readFileSync(join(dir, x), 'latin1')).toBe('ctr-b\r\neth0');

      // We must see B's reservation (not A's stale record) everywhere.
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-b' })).json.msg).toContain(`${x} is already allocated to container ctr-b`);
      expect((await hostLocal(s, { command: 'CHECK', conf, containerID: 'ctr-a' })).json).toMatchObject({ code: 3 });
      expect((await hostLocal(s, { command: 'CHECK', conf, containerID: 'ctr-b' })).code).toBe(0);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-a' })).code).toBe(0);
      expect(existsSync(join(dir, x))).toBe(true);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-b' })).code).toBe(0);
      expect(existsSync(join(dir, x))).toBe(false);

      // A file made by hand (no last_reserved_ip change) is still seen.
      writeFileSync(join(dir, '2001:db8:44::ff00'), 'by-hand\r\neth0', { mode: 0o600 });
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'by-hand' })).json.msg).toContain('2001:db8:44::ff00 is already allocated');
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'by-hand' })).code).toBe(0);
      expect(existsSync(join(dir, '2001:db8:44::ff00'))).toBe(false);

      // A release the journal did not see (Go DEL changes no last_reserved_ip): its stale line must not count.
      const c = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-c' });
      expect(c.code).toBe(0);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-c' }, GO_DIR)).code).toBe(0);
      const again = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-c' });
      expect(again.code).toBe(0);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-c' })).code).toBe(0);

      // A damaged journal is rebuilt from the files, never believed.
      appendFileSync(join(dir, JOURNAL_FILE), '+\t2001:db8:44::5\tnot-the-owner\n-\t2001:db8:44::6\ngarbage');
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'pre-6' })).json.msg).toContain('2001:db8:44::6 is already allocated');
      expect(readFileSync(join(dir, JOURNAL_FILE), 'latin1')).not.toContain('garbage');

      // Prefilled attachments are released by our DEL through the journal, one file each.
      const before = reservations(dir).length;
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'pre-7' })).code).toBe(0);
      expect(existsSync(join(dir, '2001:db8:44::7'))).toBe(false);
      expect(reservations(dir)).toHaveLength(before - 1);

      // GC reads every file and drops the journal; what is left is still seen.
      const valid = [{ containerID: 'seed', ifname: 'eth0' }];
      expect((await hostLocal(s, { command: 'GC', conf: { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid } })).code).toBe(0);
      expect(reservations(dir)).toEqual(['2001:db8:44::2']);
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'seed' })).json.msg).toContain('duplicate allocation');
    });
  });

  test('a journaled address released and taken again in the same instant, by Go or by hand, is seen', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ cniVersion: '1.0.0', ipam: { subnet: '2001:db8:45::/112', dataDir: s.dir } });
      const dir = netDir(s);
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'seed' }, GO_DIR)).code).toBe(0);
      for (let i = 3; i < INDEX_MIN_NAMES + 8; i++) writeFileSync(join(dir, `2001:db8:45::${i.toString(16)}`), `pre-${i}\r\neth0`, { mode: 0o600 });
      const a = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-a' });
      expect(a.code).toBe(0);
      const x = addrOf(a.json.ips[0].address);
      expect(readFileSync(join(dir, JOURNAL_FILE), 'latin1')).toContain(`+\t${x}\tctr-a\teth0\n`);

      // What makes a later change visible on any clock: the commit left the directory's and last_reserved_ip's
      // mtimes in the past, where no later write can put them.
      const now = Date.now();
      for (const p of [dir, join(dir, 'last_reserved_ip.0')]) expect(now - statSync(p).mtimeMs).toBeGreaterThan(1000);

      // By hand: released and taken by someone else, with last_reserved_ip left alone.
      unlinkSync(join(dir, x));
      writeFileSync(join(dir, x), 'by-hand\r\neth0', { mode: 0o600 });
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'by-hand' })).json.msg).toContain(`${x} is already allocated to container by-hand`);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'by-hand' })).code).toBe(0);
      expect(existsSync(join(dir, x))).toBe(false);

      // By Go, at once: our ADD, Go's DEL and Go's ADD of the same address, as fast as they run.
      const b = await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-b', args: `IP=${x}` });
      expect(addrOf(b.json.ips[0].address)).toBe(x);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-b' }, GO_DIR)).code).toBe(0);
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-c', args: `IP=${x}` }, GO_DIR)).code).toBe(0);
      expect((await hostLocal(s, { command: 'ADD', conf, containerID: 'ctr-c' })).json.msg).toContain(`${x} is already allocated to container ctr-c`);
      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'ctr-c' })).code).toBe(0);
      expect(existsSync(join(dir, x))).toBe(false);
    });
  });
});

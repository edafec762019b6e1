/** Sharing one data directory with the Go plugin: each releases what the other reserved, files are byte-identical. */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { addrOf, GO_DIR, hostLocal, netConf, netDir, reservations } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;
// The Go plugin installed here (1.1.1) speaks up to 1.0.0.
const conf = (dataDir: string) => netConf({ cniVersion: '1.0.0', ipam: { subnet: '203.0.113.0/24', dataDir } });

maybe('host-local and the Go plugin on one data directory', () => {
  test('the Go plugin releases a reservation we made, and we release one it made', async () => {
    await withSandbox(async (s) => {
      const c = conf(s.dir);
      const ours = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'made-by-ts' });
      const theirs = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'made-by-go' }, GO_DIR);
      expect([ours.code, theirs.code]).toEqual([0, 0]);
      // Round robin continues across implementations: the Go plugin picks up after our last_reserved_ip.0.
      expect(ours.json.ips[0].address).toBe('203.0.113.2/24');
      expect(theirs.json.ips[0].address).toBe('203.0.113.3/24');
      expect(reservations(netDir(s))).toEqual(['203.0.113.2', '203.0.113.3']);

      expect((await hostLocal(s, { command: 'DEL', conf: c, containerID: 'made-by-ts' }, GO_DIR)).code).toBe(0);
      expect(reservations(netDir(s))).toEqual(['203.0.113.3']);
      expect((await hostLocal(s, { command: 'DEL', conf: c, containerID: 'made-by-go' })).code).toBe(0);
      expect(reservations(netDir(s))).toEqual([]);

      // And we continue the round robin after the Go plugin's last reservation.
      const next = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'after' });
      expect(next.json.ips[0].address).toBe('203.0.113.4/24');
    });
  });

  test('our files are byte-identical to the Go plugin’s (reservation and last_reserved_ip), mode 0600', async () => {
    await withSandbox(async (s) => {
      const goDir = join(s.dir, 'go');
      const tsDir = join(s.dir, 'ts');
      const go = await hostLocal(s, { command: 'ADD', conf: conf(goDir), containerID: 'same-id', ifname: 'net1' }, GO_DIR);
      const ts = await hostLocal(s, { command: 'ADD', conf: conf(tsDir), containerID: 'same-id', ifname: 'net1' });
      expect(ts.json).toEqual(go.json);
      for (const f of ['203.0.113.2', 'last_reserved_ip.0']) {
        const [a, b] = [join(goDir, 'hlnet', f), join(tsDir, 'hlnet', f)];
        expect(readFileSync(b)).toEqual(readFileSync(a));
        // Upstream creates these 0600 since "Create IPAM files with 0600 permissions" (after the 1.1.1 installed here).
        expect(statSync(b).mode & 0o777).toBe(0o600);
      }
      expect(readFileSync(join(tsDir, 'hlnet', '203.0.113.2'), 'latin1')).toBe('same-id\r\nnet1');
      expect(statSync(join(tsDir, 'hlnet')).mode & 0o777).toBe(0o755);
    });
  });

  test('legacy ID-only files are understood: DEL releases them and CHECK finds them', async () => {
    await withSandbox(async (s) => {
      const c = conf(s.dir);
      expect((await hostLocal(s, { command: 'ADD', conf: c, containerID: 'seed' })).code).toBe(0);
      writeFileSync(join(netDir(s), '203.0.113.77'), 'old-ctr', { mode: 0o600 });
      expect((await hostLocal(s, { command: 'CHECK', conf: c, containerID: 'old-ctr' })).code).toBe(0);
      // A legacy file counts as held: a second ADD for that container is refused.
      const dup = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'old-ctr' });
      expect(dup.json).toMatchObject({ msg: expect.stringContaining('duplicate allocation') });
      expect((await hostLocal(s, { command: 'DEL', conf: c, containerID: 'old-ctr' })).code).toBe(0);
      expect(reservations(netDir(s))).toEqual(['203.0.113.2']);
    });
  });

  test('DEL is idempotent, needs no netns, and creates nothing when nothing was reserved', async () => {
    await withSandbox(async (s) => {
      const c = conf(s.dir);
      const first = await hostLocal(s, { command: 'DEL', conf: c, containerID: 'never-added', netns: '' });
      expect(first.code).toBe(0);
      expect(reservations(netDir(s))).toEqual([]);
      expect(() => statSync(netDir(s))).toThrow();
      const add = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'twice' });
      expect(add.code).toBe(0);
      for (let i = 0; i < 2; i++) expect((await hostLocal(s, { command: 'DEL', conf: c, containerID: 'twice', netns: '' })).code).toBe(0);
      expect(reservations(netDir(s))).toEqual([]);
      const check = await hostLocal(s, { command: 'CHECK', conf: c, containerID: 'twice' });
      expect(check.json).toMatchObject({ code: 3, msg: expect.stringContaining('twice') });
    });
  });

  test('a second ADD for the same attachment is refused and changes nothing; another ifname is a new attachment', async () => {
    await withSandbox(async (s) => {
      const c = conf(s.dir);
      const a = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'dup' });
      const b = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'dup' });
      expect(b.code).not.toBe(0);
      expect(b.json.msg).toContain(`${addrOf(a.json.ips[0].address)} is already allocated to container dup interface eth0`);
      const other = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'dup', ifname: 'eth1' });
      expect(other.code).toBe(0);
      expect(reservations(netDir(s))).toEqual(['203.0.113.2', '203.0.113.3']);
      expect((await hostLocal(s, { command: 'CHECK', conf: c, containerID: 'dup', ifname: 'eth1' })).code).toBe(0);
    });
  });

  test('CHECK confirms prevResult addresses are still reserved for the attachment', async () => {
    await withSandbox(async (s) => {
      const c = conf(s.dir);
      const a = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'chk-a' });
      const b = await hostLocal(s, { command: 'ADD', conf: c, containerID: 'chk-b' });
      const withPrev = (ips: unknown[]) => ({ ...c, prevResult: { cniVersion: '1.0.0', ips } });
      expect((await hostLocal(s, { command: 'CHECK', conf: withPrev(a.json.ips), containerID: 'chk-a' })).code).toBe(0);
      const wrong = await hostLocal(s, { command: 'CHECK', conf: withPrev(b.json.ips), containerID: 'chk-a' });
      expect(wrong.code).not.toBe(0);
      expect(wrong.json.msg).toContain(`${b.json.ips[0].address} is reserved by chk-b interface eth0`);
      // Addresses outside our ranges (another IPAM's) are not ours to judge.
      expect((await hostLocal(s, { command: 'CHECK', conf: withPrev([{ address: '198.51.100.9/24' }]), containerID: 'chk-a' })).code).toBe(0);
    });
  });
});

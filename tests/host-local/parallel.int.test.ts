/** Uniqueness under parallel ADDs (ours, and ours mixed with the Go plugin), exhaustion, and STATUS. */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, IS_REFERENCE, withSandbox } from '../helpers/netns';
import { addrOf, GO_DIR, hostLocal, netConf, netDir, reservations } from './helpers';

// These tests hold our plugin to more than the reference does (codes, STATUS, GC); they compare with Go explicitly.
const maybe = canUseNetns() && !IS_REFERENCE ? describe : describe.skip;

maybe('host-local under parallel load', () => {
  test('80 ADDs launched in parallel get 80 distinct addresses, each recorded for its attachment', async () => {
    await withSandbox(async (s) => {
      const conf = netConf({ ipam: { subnet: '198.51.100.0/24', dataDir: s.dir } });
      const ids = Array.from({ length: 80 }, (_, i) => `par-${i}`);
      const rs = await Promise.all(ids.map((containerID) => hostLocal(s, { command: 'ADD', conf, containerID })));
      for (const r of rs) expect(r.code).toBe(0);
      const addrs = rs.map((r) => addrOf(r.json.ips[0].address));
      expect(new Set(addrs).size).toBe(80);
      for (const a of addrs) expect(a).toMatch(/^198\.51\.100\.(\d+)$/);
      expect(addrs).not.toContain('198.51.100.1');
      // Each file names its owner, in the Go format.
      ids.forEach((id, i) => {
        const file = join(netDir(s), addrs[i]!);
        expect(readFileSync(file, 'utf8')).toBe(`${id}\r\neth0`);
        expect(statSync(file).mode & 0o777).toBe(0o600);
      });
      const dels = await Promise.all(ids.map((containerID) => hostLocal(s, { command: 'DEL', conf, containerID })));
      for (const r of dels) expect(r.code).toBe(0);
      expect(reservations(netDir(s))).toEqual([]);
    });
  });

  test('ours and the Go plugin racing on one directory never hand out the same address', async () => {
    await withSandbox(async (s) => {
      // The Go plugin here (1.1.1) speaks up to 1.0.0.
      const conf = netConf({ cniVersion: '1.0.0', ipam: { subnet: '198.51.100.0/24', dataDir: s.dir } });
      const runs = Array.from({ length: 40 }, (_, i) => [
        hostLocal(s, { command: 'ADD', conf, containerID: `ts-${i}` }),
        hostLocal(s, { command: 'ADD', conf, containerID: `go-${i}` }, GO_DIR),
      ]).flat();
      const rs = await Promise.all(runs);
      expect(rs.filter((r) => r.code !== 0).map((r) => r.stdout + r.stderr)).toEqual([]);
      const addrs = rs.map((r) => addrOf(r.json.ips[0].address));
      expect(new Set(addrs).size).toBe(80);
      expect(reservations(netDir(s))).toHaveLength(80);
    });
  });

  test('a full range fails ADD with a CNI error, STATUS reports 50 until an address is released', async () => {
    await withSandbox(async (s) => {
      // A /29 has .1 (gateway) .. .6: five addresses to hand out.
      const conf = netConf({ ipam: { subnet: '198.51.100.8/29', dataDir: s.dir } });
      expect((await hostLocal(s, { command: 'STATUS', conf })).code).toBe(0);
      for (let i = 0; i < 5; i++) expect((await hostLocal(s, { command: 'ADD', conf, containerID: `full-${i}` })).code).toBe(0);
      const r = await hostLocal(s, { command: 'ADD', conf, containerID: 'one-too-many' });
      expect(r.code).not.toBe(0);
      expect(r.json).toMatchObject({ code: 11, msg: expect.stringContaining('no IP addresses available in range set 0 (198.51.100.9-198.51.100.14)') });
      expect(reservations(netDir(s))).toHaveLength(5);

      const st = await hostLocal(s, { command: 'STATUS', conf });
      expect(st.code).not.toBe(0);
      expect(st.json).toMatchObject({ code: 50, msg: expect.stringContaining('has no free address') });

      expect((await hostLocal(s, { command: 'DEL', conf, containerID: 'full-2' })).code).toBe(0);
      expect((await hostLocal(s, { command: 'STATUS', conf })).code).toBe(0);
      const again = await hostLocal(s, { command: 'ADD', conf, containerID: 'one-too-many' });
      expect(again.code).toBe(0);
      expect(again.json.ips[0].address).toBe('198.51.100.12/29');
    });
  });

  test('STATUS names the exhausted set when only one of several is full', async () => {
    await withSandbox(async (s) => {
      // 2001:db8:5::/126 holds ::1 (gateway), ::2 and ::3.
      const conf = netConf({ ipam: { ranges: [[{ subnet: '198.51.100.0/24' }], [{ subnet: '2001:db8:5::/126' }]], dataDir: s.dir } });
      for (const id of ['v6-a', 'v6-b']) expect((await hostLocal(s, { command: 'ADD', conf, containerID: id })).code).toBe(0);
      const st = await hostLocal(s, { command: 'STATUS', conf });
      expect(st.json).toMatchObject({ code: 50, msg: expect.stringContaining('range set 1 (2001:db8:5::1-2001:db8:5::3)') });
      const add = await hostLocal(s, { command: 'ADD', conf, containerID: 'v6-c' });
      expect(add.json).toMatchObject({ code: 11, msg: expect.stringContaining('range set 1') });
      // The IPv4 address the failed ADD took first was given back.
      expect(reservations(netDir(s)).filter((n) => !n.includes(':'))).toEqual(['198.51.100.2', '198.51.100.3']);
    });
  });
});

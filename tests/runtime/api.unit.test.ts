/**
 * CniRuntime over fake plugins (small node scripts that log what they got and answer as told): chain order,
 * prevResult along the chain, capability filtering, the cache between ADD, CHECK and DEL, undo of a failed
 * ADD, GC of stale attachments, STATUS, and the version gates.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CniRuntime } from '../../lib/runtime/api';
import { parseConfList, type NetworkConfigList } from '../../lib/runtime/conf';

// Logs {type, command, env, conf}; fails when conf.fail names the command; ADD appends an interface named after itself.
const FAKE = `#!${process.execPath}
const fs = require('fs'), path = require('path');
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
const cmd = process.env.CNI_COMMAND, type = path.basename(process.argv[1]);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')));
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ type, cmd, env, conf }) + '\\n');
if ((conf.fail || []).includes(cmd)) { console.log(JSON.stringify({ cniVersion: conf.cniVersion, code: 11, msg: type + ' told to fail' })); process.exit(1); }
if (cmd === 'ADD') {
  const r = conf.prevResult || { interfaces: [], ips: [] };
  r.cniVersion = conf.cniVersion;
  r.interfaces = [...(r.interfaces || []), { name: type }];
  if (conf.ip) r.ips = [...(r.ips || []), { address: conf.ip, interface: r.interfaces.length - 1 }];
  console.log(JSON.stringify(r));
}
`;

let dir: string;
let log: string;
let cni: CniRuntime;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cni-rt-api-'));
  log = join(dir, 'log');
  for (const t of ['fa', 'fb']) {
    writeFileSync(join(dir, t), FAKE);
    chmodSync(join(dir, t), 0o755);
  }
  cni = new CniRuntime({ path: ['/nonexistent', dir], cacheDir: join(dir, 'cache'), env: { PATH: process.env.PATH, FAKE_LOG: log } });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Call {
  type: string;
  cmd: string;
  env: Record<string, string>;
  conf: Record<string, any>;
}
const calls = (): Call[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : []);
const clearLog = () => rmSync(log, { force: true });
const mkList = (extra: Record<string, unknown> = {}, fb: Record<string, unknown> = {}): NetworkConfigList =>
  parseConfList(
    Buffer.from(
      JSON.stringify({
        cniVersion: '1.1.0',
        name: 'tnet',
        plugins: [
          { type: 'fa', ip: '192.0.2.10/24', capabilities: { ips: true } },
          { type: 'fb', capabilities: { portMappings: true }, ...fb },
        ],
        ...extra,
      }),
    ),
  );
const rt = { containerID: 'ctr1', netns: '/var/run/netns/x', ifname: 'eth0', args: [['IgnoreUnknown', '1']] as [string, string][], capabilityArgs: { portMappings: [{ hostPort: 8080 }], ips: ['192.0.2.10/24'], bandwidth: {} } };
const cachePath = () => join(dir, 'cache', 'results', 'tnet-ctr1-eth0');

test('ADD runs the chain in order, passing each result on and only declared capabilities; the result is cached', async () => {
  const list = mkList();
  const result = await cni.addNetworkList(list, rt);
  expect(result).toEqual({ cniVersion: '1.1.0', interfaces: [{ name: 'fa' }, { name: 'fb' }], ips: [{ address: '192.0.2.10/24', interface: 0 }] });
  const [a, b] = calls();
  expect([a!.type, b!.type, a!.cmd, b!.cmd]).toEqual(['fa', 'fb', 'ADD', 'ADD']);
  expect(a!.conf).not.toHaveProperty('prevResult');
  expect(b!.conf.prevResult).toEqual({ cniVersion: '1.1.0', interfaces: [{ name: 'fa' }], ips: [{ address: '192.0.2.10/24', interface: 0 }] });
  expect(a!.conf.runtimeConfig).toEqual({ ips: ['192.0.2.10/24'] });
  expect(b!.conf.runtimeConfig).toEqual({ portMappings: [{ hostPort: 8080 }] });
  expect(a!.conf).toMatchObject({ name: 'tnet', cniVersion: '1.1.0' });
  expect(a!.env).toMatchObject({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1', CNI_PATH: `/nonexistent:${dir}` });
  const cached = JSON.parse(readFileSync(cachePath(), 'utf8'));
  expect(cached).toMatchObject({ kind: 'cniCacheV1', containerId: 'ctr1', networkName: 'tnet', ifName: 'eth0', result });
  expect(Buffer.from(cached.config, 'base64').equals(list.bytes)).toBe(true);
});

test('CHECK gets the cached result in order; DEL gets it in reverse order, then the cache is gone; DEL again still runs', async () => {
  const list = mkList();
  // Read back from the cache through the typed result, as libcni does (which always prints `dns`).
  const result = { ...(await cni.addNetworkList(list, rt)), dns: {} };
  clearLog();
  await cni.checkNetworkList(list, rt);
  expect(calls().map((c) => [c.type, c.cmd, c.conf.prevResult])).toEqual([
    ['fa', 'CHECK', result],
    ['fb', 'CHECK', result],
  ]);
  clearLog();
  await cni.delNetworkList(list, rt);
  expect(calls().map((c) => [c.type, c.cmd, c.conf.prevResult])).toEqual([
    ['fb', 'DEL', result],
    ['fa', 'DEL', result],
  ]);
  expect(existsSync(cachePath())).toBe(false);
  clearLog();
  await cni.delNetworkList(list, rt);
  expect(calls().map((c) => [c.type, c.cmd, c.conf.prevResult])).toEqual([
    ['fb', 'DEL', undefined],
    ['fa', 'DEL', undefined],
  ]);
});

test('CHECK and DEL without arguments (unset, not empty) use the ones ADD was given, from the cache', async () => {
  const list = mkList();
  await cni.addNetworkList(list, rt);
  clearLog();
  const bare = { containerID: 'ctr1', netns: '/var/run/netns/x', ifname: 'eth0' };
  await cni.checkNetworkList(list, bare);
  await cni.delNetworkList(list, bare);
  for (const c of calls()) expect(c.env.CNI_ARGS).toBe('IgnoreUnknown=1');
  expect(calls().filter((c) => c.type === 'fb').map((c) => c.conf.runtimeConfig)).toEqual([{ portMappings: [{ hostPort: 8080 }] }, { portMappings: [{ hostPort: 8080 }] }]);
  clearLog();
  // Given explicitly (even empty), the caller's arguments win.
  await cni.addNetworkList(list, rt);
  clearLog();
  await cni.delNetworkList(list, { ...bare, args: [], capabilityArgs: {} });
  expect(calls().map((c) => [c.env.CNI_ARGS, c.conf.runtimeConfig])).toEqual([
    ['', undefined],
    ['', undefined],
  ]);
});

test('the cached result is converted to the list version (a node whose config moved from 1.0.0 to 0.4.0)', async () => {
  await cni.addNetworkList(mkList({ cniVersion: '1.0.0' }), rt);
  clearLog();
  await cni.delNetworkList(mkList({ cniVersion: '0.4.0' }), rt);
  expect(calls()[0]!.conf.prevResult).toMatchObject({ cniVersion: '0.4.0', ips: [{ version: '4', address: '192.0.2.10/24' }] });
});

test('a failed ADD keeps the plugin error code, undoes the plugins that ran (newest first) and caches nothing', async () => {
  const list = mkList({}, { fail: ['ADD'] });
  await expect(cni.addNetworkList(list, rt)).rejects.toMatchObject({ code: 11, message: 'plugin type="fb" (plugins[1]) failed (add): fb told to fail' });
  expect(calls().map((c) => `${c.type} ${c.cmd}`)).toEqual(['fa ADD', 'fb ADD', 'fb DEL', 'fa DEL']);
  expect(existsSync(cachePath())).toBe(false);
});

test('when the result cannot be cached, the ADD is undone and fails with code 5', async () => {
  writeFileSync(join(dir, 'cache'), 'a file where the cache directory should be');
  await expect(cni.addNetworkList(mkList(), rt)).rejects.toMatchObject({ code: 5, message: expect.stringContaining('cannot write the cached result') });
  expect(calls().map((c) => `${c.type} ${c.cmd}`)).toEqual(['fa ADD', 'fb ADD', 'fb DEL', 'fa DEL']);
});

test('a missing plugin fails with code 7 naming it before any plugin runs', async () => {
  const list = parseConfList(Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'tnet', plugins: [{ type: 'fa' }, { type: 'nosuch' }] })));
  await expect(cni.addNetworkList(list, rt)).rejects.toMatchObject({ code: 7, message: expect.stringContaining('plugins[1].type: no plugin "nosuch"') });
  expect(calls()).toEqual([]);
});

test('bad container ID or ifname fails with code 4 before any plugin runs', async () => {
  await expect(cni.addNetworkList(mkList(), { ...rt, containerID: '-bad' })).rejects.toMatchObject({ code: 4, message: expect.stringContaining('container ID "-bad"') });
  await expect(cni.addNetworkList(mkList(), { ...rt, ifname: 'a/b' })).rejects.toMatchObject({ code: 4 });
  expect(calls()).toEqual([]);
});

test('CHECK: refused before 0.4.0 (code 1); disableCheck skips every plugin', async () => {
  await expect(cni.checkNetworkList(mkList({ cniVersion: '0.3.1' }), rt)).rejects.toMatchObject({ code: 1 });
  await cni.checkNetworkList(mkList({ disableCheck: true }), rt);
  expect(calls()).toEqual([]);
});

test('GC deletes cached attachments not listed as valid, then sends GC with the valid list to every plugin', async () => {
  const list = mkList();
  const keep = { ...rt, containerID: 'keep' };
  await cni.addNetworkList(list, rt);
  await cni.addNetworkList(list, keep);
  clearLog();
  const valid = [{ containerID: 'keep', ifname: 'eth0' }];
  await cni.gcNetworkList(list, valid);
  const c = calls();
  expect(c.map((x) => `${x.type} ${x.cmd} ${x.env.CNI_CONTAINERID}`)).toEqual(['fb DEL ctr1', 'fa DEL ctr1', 'fa GC ', 'fb GC ']);
  // The stale attachment's DEL is built from the cache: its netns, args and capability args.
  expect(c[0]!.env).toMatchObject({ CNI_NETNS: '/var/run/netns/x', CNI_ARGS: 'IgnoreUnknown=1' });
  expect(c[0]!.conf.runtimeConfig).toEqual({ portMappings: [{ hostPort: 8080 }] });
  expect(c[2]!.conf['cni.dev/valid-attachments']).toEqual(valid);
  expect(c[2]!.conf).not.toHaveProperty('prevResult');
  expect(cni.cachedAttachments().map((a) => a.containerID)).toEqual(['keep']);
});

test('GC without a valid list (as cnitool sends it) deletes every attachment of the network; disableGC does nothing', async () => {
  await cni.addNetworkList(mkList(), rt);
  await cni.gcNetworkList(mkList({ disableGC: true }));
  expect(cni.cachedAttachments()).toHaveLength(1);
  clearLog();
  await cni.gcNetworkList(mkList());
  expect(calls().map((x) => `${x.type} ${x.cmd}`)).toEqual(['fb DEL', 'fa DEL', 'fa GC', 'fb GC']);
  // The spec requires the list; with none given, nothing is valid any more.
  expect(calls()[2]!.conf['cni.dev/valid-attachments']).toEqual([]);
  expect(cni.cachedAttachments()).toEqual([]);
});

test('GC before 1.1.0 deletes stale attachments but sends no GC', async () => {
  const list = mkList({ cniVersion: '1.0.0' });
  await cni.addNetworkList(list, rt);
  clearLog();
  await cni.gcNetworkList(list, []);
  expect(calls().map((x) => x.cmd)).toEqual(['DEL', 'DEL']);
});

test('STATUS asks each plugin and stops at the first that is not ready; before 1.1.0 it asks none', async () => {
  await cni.statusNetworkList(mkList());
  expect(calls().map((x) => `${x.type} ${x.cmd}`)).toEqual(['fa STATUS', 'fb STATUS']);
  clearLog();
  const failing = parseConfList(Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: 'tnet', plugins: [{ type: 'fa', fail: ['STATUS'] }, { type: 'fb' }] })));
  await expect(cni.statusNetworkList(failing)).rejects.toMatchObject({ code: 11, message: expect.stringContaining('failed (status)') });
  expect(calls().map((x) => x.type)).toEqual(['fa']);
  clearLog();
  await cni.statusNetworkList(mkList({ cniVersion: '1.0.0' }));
  expect(calls()).toEqual([]);
});

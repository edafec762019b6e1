/** The result cache: libcni's file name, JSON format and modes; reading back in another version; listing. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedAttachments, cacheEntry, cacheFile, readCachedResult, removeCache, writeCache } from '../../lib/runtime/cache';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cni-rt-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const rt = { containerID: 'cid1', netns: '/var/run/netns/x', ifname: 'eth0', args: [['IgnoreUnknown', '1']] as [string, string][], capabilityArgs: { portMappings: [{ hostPort: 1 }] } };
const result = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/x' }], ips: [{ address: '192.0.2.2/24', gateway: '192.0.2.1', interface: 0 }], dns: {} };
const config = Buffer.from('{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge"}]}\n');

test('ADD writes <cacheDir>/results/<net>-<cid>-<ifname> in libcni format, 0600 in a 0700 directory', () => {
  writeCache(dir, cacheEntry('net', config, rt, result));
  const file = join(dir, 'results', 'net-cid1-eth0');
  expect(cacheFile(dir, 'net', rt)).toBe(file);
  const text = readFileSync(file, 'utf8');
  // Go's struct field order, config as base64 ([]byte), empty fields omitted.
  expect(Object.keys(JSON.parse(text))).toEqual(['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'cniArgs', 'capabilityArgs', 'result']);
  expect(JSON.parse(text)).toEqual({
    kind: 'cniCacheV1',
    containerId: 'cid1',
    config: config.toString('base64'),
    ifName: 'eth0',
    networkName: 'net',
    netns: '/var/run/netns/x',
    cniArgs: [['IgnoreUnknown', '1']],
    capabilityArgs: { portMappings: [{ hostPort: 1 }] },
    result,
  });
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(statSync(join(dir, 'results')).mode & 0o777).toBe(0o700);
});

test('omits netns, cniArgs and capabilityArgs when empty (omitempty)', () => {
  const e = cacheEntry('net', config, { containerID: 'c', netns: '', ifname: 'eth0', args: [], capabilityArgs: {} }, result);
  expect(Object.keys(e)).toEqual(['kind', 'containerId', 'config', 'ifName', 'networkName', 'result']);
});

test('the cached result is returned in the version asked for', () => {
  writeCache(dir, cacheEntry('net', config, rt, result));
  expect(readCachedResult(dir, 'net', rt, '1.0.0')).toEqual(result);
  expect(readCachedResult(dir, 'net', rt, '0.4.0')).toMatchObject({ cniVersion: '0.4.0', ips: [{ version: '4', address: '192.0.2.2/24' }] });
  expect(readCachedResult(dir, 'net', { containerID: 'other', ifname: 'eth0' }, '1.0.0')).toBeUndefined();
});

test('a pre-cniCacheV1 file (just the result) is still read; garbage is an error', () => {
  mkdirSync(join(dir, 'results'), { recursive: true });
  writeFileSync(join(dir, 'results', 'net-cid1-eth0'), JSON.stringify({ cniVersion: '0.4.0', ips: [{ version: '4', address: '192.0.2.7/24' }] }));
  expect(readCachedResult(dir, 'net', rt, '1.0.0')).toEqual({ cniVersion: '1.0.0', ips: [{ address: '192.0.2.7/24' }], dns: {} });
  writeFileSync(join(dir, 'results', 'net-cid1-eth0'), '{not json');
  expect(() => readCachedResult(dir, 'net', rt, '1.0.0')).toThrow(/not JSON/);
  removeCache(dir, 'net', rt);
  expect(readCachedResult(dir, 'net', rt, '1.0.0')).toBeUndefined();
});

test('attachments are listed from valid cniCacheV1 files only, optionally for one container', () => {
  writeCache(dir, cacheEntry('net', config, rt, result));
  writeCache(dir, cacheEntry('net', config, { containerID: 'cid2', netns: '', ifname: 'net1' }, result));
  writeCache(dir, cacheEntry('other', config, { containerID: 'cid1', netns: '', ifname: 'eth1' }, result));
  writeFileSync(join(dir, 'results', 'junk-cid1-eth9'), 'junk');
  writeFileSync(join(dir, 'results', 'legacy-cid1-eth8'), JSON.stringify(result));
  const all = cachedAttachments(dir);
  expect(all.map((a) => [a.network, a.containerID, a.ifname])).toEqual([
    ['net', 'cid1', 'eth0'],
    ['net', 'cid2', 'net1'],
    ['other', 'cid1', 'eth1'],
  ]);
  expect(all[0]).toEqual({ containerID: 'cid1', network: 'net', ifname: 'eth0', netns: '/var/run/netns/x', config, args: rt.args, capabilityArgs: rt.capabilityArgs });
  expect(cachedAttachments(dir, 'cid2').map((a) => a.ifname)).toEqual(['net1']);
  expect(cachedAttachments(join(dir, 'missing'))).toEqual([]);
});

test('a cache path needs network, container ID and ifname', () => {
  expect(() => cacheFile(dir, 'net', { containerID: '', ifname: 'eth0' })).toThrow(/container ID/);
});

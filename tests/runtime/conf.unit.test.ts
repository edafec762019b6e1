/** lib/runtime conf + request: loading and ordering of configs, the version pick, capability filtering. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNetworkConf, parseConfList, pickVersion } from '../../lib/runtime/conf';
import { pluginConfig, pluginEnv, runtimeConfigFor } from '../../lib/runtime/request';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cni-rt-conf-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, v: unknown) => writeFileSync(join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
const list = (name: string, type: string, extra = {}) => ({ cniVersion: '1.0.0', name, plugins: [{ type }], ...extra });
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code: number }).code, msg: (e as Error).message };
  }
  throw new Error('did not throw');
};

describe('loadNetworkConf', () => {
  test('a .conflist wins over a .conf of the same name, whatever the file order', () => {
    write('00-single.conf', { cniVersion: '1.0.0', name: 'net', type: 'from-conf' });
    write('50-list.conflist', list('net', 'from-conflist'));
    expect(loadNetworkConf(dir, 'net').plugins[0]!.type).toBe('from-conflist');
  });

  test('among conflists of one name the first by file name is used', () => {
    write('20-b.conflist', list('net', 'second'));
    write('10-a.conflist', list('net', 'first'));
    write('05-other.conflist', list('other', 'x'));
    expect(loadNetworkConf(dir, 'net').plugins[0]!.type).toBe('first');
  });

  test('a single .conf or .json is upgraded to a list of one, keeping its keys', () => {
    write('10-x.json', { cniVersion: '0.4.0', name: 'single', type: 'bridge', bridge: 'br9' });
    const l = loadNetworkConf(dir, 'single');
    expect(l).toMatchObject({ name: 'single', cniVersion: '0.4.0', disableCheck: false, plugins: [{ type: 'bridge', bridge: 'br9' }] });
    expect(JSON.parse(l.bytes.toString())).toMatchObject({ name: 'single', plugins: [{ type: 'bridge' }] });
  });

  test('plugins in <dir>/<network>/*.conf are appended unless loadOnlyInlinedPlugins', () => {
    write('10-a.conflist', list('net', 'inline'));
    mkdirSync(join(dir, 'net'));
    write('net/1.conf', { type: 'extra' });
    expect(loadNetworkConf(dir, 'net').plugins.map((p) => p.type)).toEqual(['inline', 'extra']);
    write('10-a.conflist', list('net', 'inline', { loadOnlyInlinedPlugins: true }));
    expect(loadNetworkConf(dir, 'net').plugins.map((p) => p.type)).toEqual(['inline']);
  });

  test('keeps the exact bytes of the file for the cache', () => {
    const text = `{ "cniVersion": "1.0.0", "name": "net",\n  "plugins": [ {"type": "a"} ] }\n`;
    write('10.conflist', text);
    expect(loadNetworkConf(dir, 'net').bytes.toString()).toBe(text);
  });

  test('names what is missing', () => {
    expect(codeOf(() => loadNetworkConf(join(dir, 'nope'), 'net'))).toMatchObject({ code: 7, msg: expect.stringContaining('no net configurations found') });
    write('10.conflist', list('other', 'a'));
    expect(codeOf(() => loadNetworkConf(dir, 'net'))).toMatchObject({ code: 7, msg: `no net configuration with name "net" in ${dir}` });
  });

  test('a broken file is an error naming the file, even when another network is asked for', () => {
    write('10.conflist', '{"name": ');
    write('20.conflist', list('net', 'a'));
    expect(codeOf(() => loadNetworkConf(dir, 'net'))).toMatchObject({ code: 6, msg: expect.stringContaining(join(dir, '10.conflist')) });
  });
});

describe('parseConfList validation', () => {
  const bad = (v: unknown) => codeOf(() => parseConfList(Buffer.from(JSON.stringify(v)), 'f.conflist'));
  test.each([
    [{ cniVersion: '1.0.0', plugins: [{ type: 'a' }] }, 'f.conflist: name: expected a string'],
    [{ cniVersion: '1.0.0', name: 'bad name', plugins: [{ type: 'a' }] }, 'name: "bad name" must match'],
    [{ cniVersion: '1.0.0', name: 'n', plugins: [] }, 'plugins: the list is empty'],
    [{ cniVersion: '1.0.0', name: 'n', plugins: {} }, 'plugins: expected an array'],
    [{ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'a' }, { bridge: 'x' }] }, 'plugins[1].type: expected a plugin name'],
    [{ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'a', capabilities: { portMappings: 'yes' } }] }, 'plugins[0].capabilities.portMappings: expected true or false'],
    [{ cniVersion: '1.0.0', name: 'n', disableCheck: 'yes', plugins: [{ type: 'a' }] }, 'disableCheck: expected true or false (got "yes")'],
    [{ cniVersion: '0.5.0', name: 'n', plugins: [{ type: 'a' }] }, 'cniVersion: "0.5.0" is not a CNI version'],
    [{ cniVersion: 1, name: 'n', plugins: [{ type: 'a' }] }, 'cniVersion: expected a string (got 1)'],
  ])('%j -> code 7 naming the field', (conf, text) => {
    expect(bad(conf)).toMatchObject({ code: 7, msg: expect.stringContaining(text) });
  });

  test('disableCheck/disableGC accept booleans and "true"/"false" in any case', () => {
    const l = parseConfList(Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'n', disableCheck: 'TRUE', disableGC: true, plugins: [{ type: 'a' }] })));
    expect([l.disableCheck, l.disableGC]).toEqual([true, true]);
  });
});

describe('pickVersion', () => {
  test.each([
    [{ cniVersion: '1.0.0' }, '1.0.0'],
    [{}, '0.1.0'],
    [{ cniVersions: ['0.4.0', '1.1.0', '1.0.0'] }, '1.1.0'],
    [{ cniVersion: '0.3.1', cniVersions: ['1.0.0'] }, '1.0.0'],
    [{ cniVersion: '1.0.0', cniVersions: ['0.4.0'] }, '1.0.0'],
    // Newer than this runtime implements: skipped, so one file serves old and new runtimes.
    [{ cniVersions: ['1.0.0', '1.1.0', '2.0.0'] }, '1.1.0'],
  ])('%j -> %s', (raw, v) => expect(pickVersion(raw, 'f')).toBe(v));

  test('only future versions, or a malformed entry, is an error', () => {
    expect(codeOf(() => pickVersion({ cniVersions: ['2.0.0'] }, 'f'))).toMatchObject({ code: 7, msg: expect.stringContaining('none of [2.0.0]') });
    expect(codeOf(() => pickVersion({ cniVersions: ['one'] }, 'f'))).toMatchObject({ code: 7, msg: expect.stringContaining('cniVersions[0]') });
  });
});

describe('per-plugin request', () => {
  const plugin = { type: 'portmap', name: 'own', capabilities: { portMappings: true, ips: false }, runtimeConfig: { fromFile: 1 }, snat: false };
  const caps = { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }], ips: ['192.0.2.9/24'], bandwidth: { rate: 1 } };

  test('runtimeConfig holds only capabilities the plugin declared true', () => {
    expect(runtimeConfigFor(plugin, caps)).toEqual({ portMappings: caps.portMappings });
    expect(runtimeConfigFor({ type: 'bridge' }, caps)).toEqual({});
  });

  test('the plugin gets the list name and version, prevResult and its runtimeConfig; unknown keys pass through', () => {
    const out = JSON.parse(pluginConfig({ name: 'net', cniVersion: '1.0.0' }, plugin, { prevResult: { cniVersion: '1.0.0', ips: [] }, rt: { containerID: 'c', netns: '/n', ifname: 'eth0', capabilityArgs: caps } }).toString());
    expect(out).toEqual({ type: 'portmap', name: 'net', cniVersion: '1.0.0', capabilities: plugin.capabilities, runtimeConfig: { portMappings: caps.portMappings }, snat: false, prevResult: { cniVersion: '1.0.0', ips: [] } });
  });

  test('a runtimeConfig written in the file stays when the runtime has nothing for the plugin', () => {
    const out = JSON.parse(pluginConfig({ name: 'net', cniVersion: '1.0.0' }, plugin, { rt: { containerID: 'c', netns: '', ifname: 'eth0' } }).toString());
    expect(out.runtimeConfig).toEqual({ fromFile: 1 });
    expect(out).not.toHaveProperty('prevResult');
  });

  test('the environment sets every CNI_* variable over the inherited ones', () => {
    const env = pluginEnv('DEL', { containerID: 'c1', netns: '/var/run/netns/x', ifname: 'net1', args: [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'p']] }, ['/a', '/b'], { PATH: '/bin', CNI_NETNS: 'stale' });
    expect(env).toEqual({ PATH: '/bin', CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'net1', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p', CNI_PATH: '/a:/b' });
    expect(pluginEnv('STATUS', undefined, ['/a'], {})).toMatchObject({ CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_ARGS: '' });
  });
});

/**
 * The protocol skeleton, driven through the noop test plugin (tests/fixtures/noop-plugin.ts) as a real
 * process: env errors, decode errors, version negotiation and gates, prevResult conversion, delegation.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NOOP_PLUGIN, sh, uniqueName } from '../helpers/netns';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
let dir: string;
let pathDir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cni-skel-'));
  pathDir = join(dir, 'bin');
  mkdirSync(pathDir);
  symlinkSync(NOOP_PLUGIN, join(pathDir, 'noop'));
  symlinkSync(NOOP_PLUGIN, join(pathDir, 'noop-ipam'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Call {
  command?: string;
  conf?: unknown;
  env?: Record<string, string>;
  unset?: string[];
}

async function call({ command = 'ADD', conf = {}, env = {}, unset = [] }: Call) {
  const e: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'ctr1',
    CNI_NETNS: '/var/run/netns/x',
    CNI_IFNAME: 'eth0',
    CNI_PATH: pathDir,
    ...env,
  };
  for (const k of unset) delete e[k];
  const r = await sh(join(pathDir, 'noop'), [], { input: typeof conf === 'string' ? conf : JSON.stringify(conf), env: e });
  return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

const conf = (v: string, extra: Record<string, unknown> = {}) => ({ cniVersion: v, name: 'net1', type: 'noop', ...extra });

describe('environment', () => {
  test('no CNI_COMMAND: code 4, non-zero exit, no stack trace', async () => {
    const r = await call({ unset: ['CNI_COMMAND'], conf: conf('1.0.0') });
    expect(r.code).not.toBe(0);
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_COMMAND') });
    expect(r.stdout + r.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  test.each([
    ['ADD', 'CNI_NETNS'],
    ['ADD', 'CNI_CONTAINERID'],
    ['ADD', 'CNI_IFNAME'],
    ['ADD', 'CNI_PATH'],
    ['CHECK', 'CNI_NETNS'],
    ['DEL', 'CNI_CONTAINERID'],
  ])('%s without %s is code 4 naming it', async (command, v) => {
    const r = await call({ command, unset: [v], conf: conf('1.0.0') });
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringContaining(v) });
  });

  test('DEL without CNI_NETNS is fine', async () => {
    const r = await call({ command: 'DEL', unset: ['CNI_NETNS'], conf: conf('1.0.0') });
    expect(r.code).toBe(0);
  });

  test('several bad variables are all named', async () => {
    const r = await call({ unset: ['CNI_NETNS', 'CNI_PATH'], env: { CNI_IFNAME: 'a/b' }, conf: conf('1.0.0') });
    expect(r.json.code).toBe(4);
    expect(r.json.msg).toMatch(/CNI_NETNS/);
    expect(r.json.msg).toMatch(/CNI_PATH/);
    expect(r.json.msg).toMatch(/CNI_IFNAME "a\/b"/);
  });

  test.each(['-bad', '../x', 'a b', 'a/b'])('container ID %p is code 4', async (id) => {
    const r = await call({ env: { CNI_CONTAINERID: id }, conf: conf('1.0.0') });
    expect(r.json).toMatchObject({ code: 4, msg: expect.stringContaining('CNI_CONTAINERID') });
  });

  test.each(['', 'x'.repeat(16), '.', '..', 'a:b', 'a b', 'a/b'])('ifname %p is code 4', async (ifname) => {
    const r = await call({ env: { CNI_IFNAME: ifname }, conf: conf('1.0.0') });
    expect(r.json.code).toBe(4);
  });

  test('a bad network name is code 7 naming it', async () => {
    const r = await call({ conf: conf('1.0.0', { name: '../../etc' }) });
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('name') });
  });

  test('unknown CNI_COMMAND is code 4', async () => {
    const r = await call({ command: 'FROB', conf: conf('1.0.0') });
    expect(r.json.code).toBe(4);
  });
});

describe('decoding', () => {
  test('bad JSON is code 6', async () => {
    const r = await call({ conf: '{"cniVersion":' });
    expect(r.code).not.toBe(0);
    expect(r.json.code).toBe(6);
  });
  test('a JSON array is code 6', async () => {
    expect((await call({ conf: '[]' })).json.code).toBe(6);
  });
  test('more than 4 MiB of stdin is refused, not read to the end', async () => {
    const big = JSON.stringify({ ...conf('1.0.0'), pad: 'x'.repeat(5 * 1024 * 1024) });
    const r = await call({ conf: big });
    expect(r.json).toMatchObject({ code: 6, msg: expect.stringContaining('larger than') });
  });
  test('stdin that cannot be read (a directory) is code 5 naming the error, exit 1, no stack trace', async () => {
    const r = await sh('sh', ['-c', `exec "$0" < /`, join(pathDir, 'noop')], { env: { PATH: process.env.PATH, CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', CNI_PATH: pathDir } });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 5, msg: expect.stringContaining('cannot read stdin: EISDIR') });
    expect(r.stderr).not.toMatch(/\bat .*:\d+:\d+/);
  });
  test('a wrong type is code 7 naming field and value', async () => {
    const r = await call({ conf: { cniVersion: '1.0.0', name: 'n', type: 'noop', capabilities: 'yes' } });
    expect(r.json).toMatchObject({ code: 7, msg: 'capabilities: expected record (got "yes")' });
  });
});

describe('versions', () => {
  test('VERSION lists all seven', async () => {
    const r = await call({ command: 'VERSION', conf: '' });
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: VERSIONS });
  });
  test('VERSION echoes a supported requested version', async () => {
    expect((await call({ command: 'VERSION', conf: { cniVersion: '0.4.0' } })).json.cniVersion).toBe('0.4.0');
  });
  test('unknown version is code 1 listing the supported ones', async () => {
    const r = await call({ conf: conf('0.5.0') });
    expect(r.json).toMatchObject({ code: 1, msg: expect.stringContaining('1.1.0') });
  });
  test.each([
    ['CHECK', '0.3.1', 1],
    ['CHECK', '0.4.0', 0],
    ['STATUS', '1.0.0', 1],
    ['STATUS', '1.1.0', 0],
    ['GC', '1.0.0', 1],
    ['GC', '1.1.0', 0],
  ])('%s at %s -> %s', async (command, v, want) => {
    const r = await call({ command, conf: conf(v) });
    if (want) expect(r.json).toMatchObject({ code: want, cniVersion: v });
    else expect(r.code).toBe(0);
  });

  test.each(VERSIONS)('ADD at %s prints a result of that version', async (v) => {
    const r = await call({ conf: conf(v) });
    expect(r.code).toBe(0);
    expect(r.json.cniVersion).toBe(v);
    if (v < '0.3.0') expect(r.json.ip4.ip).toBe('192.0.2.10/24');
    else expect(r.json.ips[0].address).toBe('192.0.2.10/24');
    if (v.startsWith('0.3') || v === '0.4.0') expect(r.json.ips[0].version).toBe('4');
  });
});

describe('prevResult', () => {
  const prev: Record<string, unknown> = {
    '0.2.0': { cniVersion: '0.2.0', ip4: { ip: '198.51.100.7/24', gateway: '198.51.100.1' } },
    '0.3.1': { cniVersion: '0.3.1', ips: [{ version: '4', address: '198.51.100.7/24', gateway: '198.51.100.1' }] },
    '0.4.0': { cniVersion: '0.4.0', ips: [{ version: '4', address: '198.51.100.7/24', gateway: '198.51.100.1' }] },
    '1.0.0': { cniVersion: '1.0.0', ips: [{ address: '198.51.100.7/24', gateway: '198.51.100.1' }] },
    '1.1.0': { cniVersion: '1.1.0', ips: [{ address: '198.51.100.7/24', gateway: '198.51.100.1' }] },
  };
  test.each(Object.keys(prev))('a %s prevResult is read into the newest shape', async (v) => {
    const report = join(dir, `report-${uniqueName('p')}`);
    const r = await call({ command: 'DEL', conf: conf(v, { prevResult: prev[v], debug: { report } }) });
    expect(r.code).toBe(0);
    const seen = JSON.parse(readFileSync(report, 'utf8').trim());
    expect(seen.prevResult.ips).toEqual([{ address: '198.51.100.7/24', gateway: '198.51.100.1' }]);
  });
  test('a broken prevResult is code 7', async () => {
    const r = await call({ command: 'DEL', conf: conf('1.0.0', { prevResult: { ips: [{ address: 'nope' }] } }) });
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('prevResult.ips[0].address') });
  });
});

describe('delegation', () => {
  test('ADD returns the delegate result, converted to the request version', async () => {
    const result = { cniVersion: '0.3.1', ips: [{ version: '4', address: '203.0.113.9/24' }] };
    writeFileSync(join(dir, 'r.json'), '');
    const r = await call({ conf: conf('0.3.1', { debug: { delegate: 'noop-ipam', delegated: { result } } }) });
    expect(r.code).toBe(0);
    expect(r.json.ips).toEqual([{ version: '4', address: '203.0.113.9/24' }]);
  });
  test("a delegate's error keeps its code", async () => {
    const r = await call({ conf: conf('1.0.0', { debug: { delegate: 'noop-ipam', delegated: { fail: { code: 11, msg: 'busy' } } } }) });
    expect(r.json).toMatchObject({ code: 11, msg: 'debug.delegate noop-ipam: busy' });
  });
  test('a request left waiting on nothing fails with a CNI error, not a silent exit 0', async () => {
    const r = await call({ conf: conf('1.0.0', { debug: { stall: true } }) });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ code: 999, msg: expect.stringContaining('stopped before it had a result') });
  });
  test('a missing delegate is code 7 naming it and CNI_PATH', async () => {
    const r = await call({ conf: conf('1.0.0', { debug: { delegate: 'nonexistent' } }) });
    expect(r.json).toMatchObject({ code: 7, msg: expect.stringContaining('"nonexistent"') });
  });
  test('a delegate name with a slash is refused', async () => {
    const r = await call({ conf: conf('1.0.0', { debug: { delegate: '../noop' } }) });
    expect(r.json.code).toBe(7);
  });
  test('a failure after a successful delegated ADD runs the delegate DEL', async () => {
    const report = join(dir, `report-${uniqueName('d')}`);
    const r = await call({ conf: conf('1.0.0', { debug: { delegate: 'noop-ipam', failAfterDelegate: true, report } }) });
    expect(r.json.code).toBe(11);
    const commands = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l).command);
    // outer ADD, delegate ADD, delegate DEL
    expect(commands).toEqual(['ADD', 'ADD', 'DEL']);
  });
});

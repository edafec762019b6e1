/**
 * Property-based hostile input: random and mutated configs, environments and prevResults for every plugin and
 * command. Every run must end in a valid result or a CNI error JSON with the expected code (never a crash, a
 * hang or a stack trace), and a request that fails must leave no trace: links, addresses, netfilter rules and
 * host-local files are compared before and after. Fixed seed and bounded count in `npm test`; a longer run:
 *   CNI_FUZZ_RUNS=2000 CNI_FUZZ_SEED=$RANDOM npx jest tests/reliability/hostile
 */
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPath, Sandbox } from '../helpers/netns';

const RUNS = Number(process.env.CNI_FUZZ_RUNS ?? 40);
const SEED = Number(process.env.CNI_FUZZ_SEED ?? 20261129);
const PLUGINS = ['bridge', 'host-local', 'portmap'] as const;
const COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

let s: Sandbox;
let ctr: string;
beforeAll(async () => {
  s = await new Sandbox().init();
  ctr = await s.container();
});
afterAll(() => s?.cleanup());

function baseConf(plugin: (typeof PLUGINS)[number], dataDir: string): Record<string, unknown> {
  const ipam = { type: 'host-local', ranges: [[{ subnet: '203.0.113.0/24' }]], dataDir };
  switch (plugin) {
    case 'bridge':
      return { cniVersion: '1.0.0', name: 'fuzz', type: 'bridge', bridge: 'fz0', isGateway: true, ipMasq: true, ipam };
    case 'host-local':
      return { cniVersion: '1.0.0', name: 'fuzz', type: 'host-local', ipam };
    case 'portmap':
      return {
        cniVersion: '1.0.0',
        name: 'fuzz',
        type: 'portmap',
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
        prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: '203.0.113.5/24', interface: 0 }] },
      };
  }
}

/** What the host namespace holds that a plugin could create. */
async function state(dataDir: string): Promise<string> {
  // Names and addresses only: carrier and DAD flags change on their own after a bridge loses its last port.
  const names = (out: string) => out.split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort();
  const links = names((await s.exec('ip', ['-o', 'link'])).stdout);
  const addrs = (await s.exec('ip', ['-o', 'addr'])).stdout.split('\n').map((l) => l.split(/\s+/).slice(1, 4).join(' ')).filter(Boolean).sort();
  const ctrLinks = names((await s.exec('ip', ['-o', 'link'], { ns: ctr })).stdout);
  const ipt = (await s.exec('iptables-save', [])).stdout.replace(/^[#:].*$/gm, '');
  const nft = (await s.exec('nft', ['list', 'ruleset'])).stdout.replace(/counter packets \d+ bytes \d+/g, '');
  let files: string[] = [];
  try {
    files = readdirSync(join(dataDir, 'fuzz')).filter((f) => f !== 'lock');
  } catch {
    files = [];
  }
  return JSON.stringify({ links, addrs, ctrLinks, ipt, nft, files });
}

const jsonValue = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), fc.double());

/** A mutation with the error code it must produce, or null when the mutated request may legitimately succeed. */
type Apply = (env: Record<string, string>, conf: Record<string, unknown>) => string;
type Mutation = { describe: string; apply: Apply; expect: number[] | null };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constantFrom('CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH').map((v): Mutation => ({
    describe: `unset ${v}`,
    apply: (env, conf) => {
      delete env[v];
      return JSON.stringify(conf);
    },
    expect: null, // DEL without CNI_NETNS is valid; the code is checked in the property when it fails
  })),
  fc.constantFrom('a/b', '..', 'x'.repeat(16), 'a b', 'a:b').map((v): Mutation => ({
    describe: `CNI_IFNAME=${v}`,
    apply: (env, conf) => ((env.CNI_IFNAME = v), JSON.stringify(conf)),
    expect: [4],
  })),
  fc.constantFrom('../etc', '-x', 'a/b', '.hidden').map((v): Mutation => ({
    describe: `CNI_CONTAINERID=${v}`,
    apply: (env, conf) => ((env.CNI_CONTAINERID = v), JSON.stringify(conf)),
    expect: [4],
  })),
  fc.string({ maxLength: 40 }).map((junk): Mutation => ({
    describe: `not JSON: ${JSON.stringify(junk)}`,
    apply: () => `{${junk}`,
    expect: [6],
  })),
  fc.constantFrom('0.5.0', '2.0.0', 'x', '1.1', '').map((v): Mutation => ({
    describe: `cniVersion ${v}`,
    apply: (_e, conf) => JSON.stringify({ ...conf, cniVersion: v }),
    expect: v === '' ? null : [1],
  })),
  fc.tuple(fc.constantFrom('bridge', 'mtu', 'isGateway', 'ipMasq', 'hairpinMode', 'vlan', 'ipam', 'dns', 'name', 'runtimeConfig', 'prevResult', 'snat', 'markMasqBit', 'backend', 'ipMasqBackend', 'capabilities'), jsonValue).map(([k, v]): Mutation => ({
    describe: `${k}=${JSON.stringify(v)}`,
    apply: (_e, conf) => JSON.stringify({ ...conf, [k]: v }),
    expect: null,
  })),
  fc.tuple(fc.constantFrom('subnet', 'rangeStart', 'rangeEnd', 'gateway'), jsonValue).map(([k, v]): Mutation => ({
    describe: `ipam range ${k}=${JSON.stringify(v)}`,
    apply: (_e, conf) => {
      const ipam = (conf.ipam ?? {}) as Record<string, unknown>;
      return JSON.stringify({ ...conf, ipam: { ...ipam, ranges: [[{ subnet: '203.0.113.0/24', [k]: v }]] } });
    },
    expect: null,
  })),
  fc.tuple(fc.constantFrom('hostPort', 'containerPort', 'protocol', 'hostIP'), jsonValue).map(([k, v]): Mutation => ({
    describe: `portMapping ${k}=${JSON.stringify(v)}`,
    apply: (_e, conf) => JSON.stringify({ ...conf, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', [k]: v }] } }),
    expect: null,
  })),
);

const ALLOWED_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51]);

test.each(PLUGINS)('%s: random hostile requests end in a result or the right error, and failures leave nothing', async (plugin) => {
  const dataDir = join(s.dir, `data-${plugin}`);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...COMMANDS), fc.constantFrom('0.3.1', '0.4.0', '1.0.0', '1.1.0'), mutation, async (command, version, m) => {
      const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: 'fuzz1', CNI_NETNS: netnsPath(ctr), CNI_IFNAME: 'eth0', CNI_PATH: join(__dirname, '..', '..', 'dist') };
      const conf = { ...baseConf(plugin, dataDir), cniVersion: version };
      const input = m.apply(env, conf);
      const before = await state(dataDir);
      const unset = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'].filter((k) => !(k in env));
      const r = await s.plugin(plugin, { command: env.CNI_COMMAND ?? '', conf: input, containerID: env.CNI_CONTAINERID, netns: env.CNI_NETNS, ifname: env.CNI_IFNAME, path: env.CNI_PATH, unset });
      const where = `${plugin} ${command} ${version} ${m.describe}`;
      expect(r.stdout + r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace anywhere
      if (r.code !== 0 || command === 'ADD' || command === 'VERSION') expect({ where, json: r.json !== undefined }).toEqual({ where, json: true });
      if (r.code === 0) {
        if (command === 'ADD') {
          // Valid after all: undo it, so the next case starts clean.
          await s.plugin(plugin, { command: 'DEL', conf: input, containerID: env.CNI_CONTAINERID, netns: env.CNI_NETNS, ifname: env.CNI_IFNAME, path: env.CNI_PATH });
        }
        return;
      }
      expect({ where, code: r.json.code, ok: ALLOWED_CODES.has(r.json.code) || r.json.code === 999 }).toEqual({ where, code: r.json.code, ok: true });
      expect(typeof r.json.msg).toBe('string');
      if (m.expect) expect({ where, code: m.expect.includes(r.json.code) ? 'as expected' : r.json.code }).toEqual({ where, code: 'as expected' });
      expect({ where, state: await state(dataDir) }).toEqual({ where, state: before });
    }),
    { seed: SEED, numRuns: RUNS, endOnFailure: true },
  );
});

/**
 * Runs every plugin's request path while the V8 startup snapshot is built, so the snapshot carries those
 * functions' bytecode. V8 compiles a function the first time it is called; without this, each plugin call spent
 * ~15% of its CPU compiling our code (and zod's) again.
 *
 * Two parts: the pure functions with made-up inputs, and a rehearsal (lib/rehearsal.ts): whole ADD, CHECK, DEL,
 * STATUS and GC requests of each plugin and backend, where processes, locks and sysctl writes are pretended and
 * host-local writes into a temporary directory. Nothing else of the machine is touched, no module state is left
 * behind (what runs here is frozen into every later start), and the inputs are fixed.
 */
import { parseCniArgs } from '../lib/args';
import { failedAtLine, interactiveOutcome, run } from '../lib/exec';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ipt from '../lib/firewall/iptables/hostport-rules';
import { addPayload as masqPayload, delPayload as masqDelPayload, attachmentsInListing, dualRestoreScript } from '../lib/firewall/iptables/masquerade';
import * as nftHp from '../lib/firewall/nftables/hostport-rules';
import { parseChain, postroutingIntact, rulesScript as nftMasqRules, skeletonScript as nftMasqSkeleton } from '../lib/firewall/nftables/masquerade';
import { formatCidr, formatIp, parseCidr, parseIp } from '../lib/ip';
import { batchFailures, batchWord } from '../lib/net/batch';
import { attachmentAlias, hostVethName } from '../lib/net/names';
import { registerInProcess } from '../lib/invoke';
import { rehearsal } from '../lib/rehearsal';
import { runPlugin, type Plugin } from '../lib/skel';
import { formatResult, parseResult, type Result } from '../lib/types/result';
import { SUPPORTED_VERSIONS } from '../lib/version';
import { loadConf } from '../plugins/bridge/config';
import { containerAddresses } from '../plugins/bridge/del';
import { conflictingAddresses, planAdd } from '../plugins/bridge/plan';
import { parseConfig } from '../plugins/portmap/config';
import { hostportRequest, localnetTarget, udpFlushes } from '../plugins/portmap/plan';
import { loadConfig, requestedIps } from '../ipam/host-local/config';
import { assignRequested, freeCandidates } from '../ipam/host-local/plan';
import { main } from './main';

const NETWORK = 'warmup';
const ID = 'warmup-0123456789abcdef';
const ipam = { type: 'host-local', ranges: [[{ subnet: '198.51.100.0/24' }], [{ subnet: '2001:db8::/64' }]], routes: [{ dst: '0.0.0.0/0' }] };
const bridgeRaw = (backend: string) => ({ cniVersion: '1.1.0', name: NETWORK, type: 'bridge', bridge: 'cni-warm0', isGateway: true, isDefaultGateway: true, ipMasq: true, ipMasqBackend: backend, hairpinMode: true, ipam });

const ipamResult: Result = {
  ips: [
    { address: '198.51.100.7/24', gateway: '198.51.100.1' },
    { address: '2001:db8::7/64', gateway: '2001:db8::1' },
  ],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: { nameservers: ['192.0.2.53'] },
};

const portMappings = [
  { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
  { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
];

/** A planAdd input for the warm-up's container (the bridge as it is: absent unless given). */
const planInput = (conf: ReturnType<typeof loadConf>, bridge?: { mac: string; macPinned: boolean }) => ({
  conf,
  containerID: ID,
  ifname: 'eth0',
  netns: '/var/run/netns/warmup',
  hostVeth: hostVethName(ID, 'eth0', 0),
  alias: attachmentAlias(ID, 'eth0'),
  ipam: ipamResult,
  ...(bridge ? { bridge } : {}),
  macs: { bridge: '02:00:00:00:00:01', host: '02:00:00:00:00:02', container: '02:00:00:00:00:03' },
});

function bridgePath(): Result {
  for (const backend of ['iptables', 'nftables']) {
    const conf = loadConf(bridgeRaw(backend), parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=warm'), true);
    const plan = planAdd(planInput(conf, { mac: '02:00:00:00:00:01', macPinned: false }));
    conflictingAddresses(['198.51.100.1/24', '192.0.2.1/24'], plan.gateways);
    containerAddresses(plan.result, 'eth0');
    batchWord('/var/run/netns/warm up');
    batchFailures('RTNETLINK answers: File exists\nCommand failed -:3\n');
  }
  return planAdd(planInput(loadConf(bridgeRaw('iptables'), parseCniArgs(undefined), true))).result;
}

function masqueradePath(): void {
  const chain = 'CNI-0123456789abcdef01234567';
  const comment = `name: "${NETWORK}" id: "${ID}"`;
  const p4 = masqPayload(4, { chain, comment, ips: ['198.51.100.7'], subnets: ['198.51.100.0/24'] });
  const p6 = masqPayload(6, { chain, comment, ips: ['2001:db8::7'], subnets: ['2001:db8::/64'] });
  dualRestoreScript([[4, p4], [6, p6]]);
  masqDelPayload(chain, [`-D POSTROUTING -s 198.51.100.7 -j ${chain}`]);
  attachmentsInListing(`-A POSTROUTING -s 198.51.100.7/32 -m comment --comment "name: \\"${NETWORK}\\" id: \\"${ID}\\"" -j ${chain}\n`, NETWORK);
  const r = { network: NETWORK, containerID: ID, ifname: 'eth0', addresses: ['198.51.100.7/24', '2001:db8::7/64'] };
  nftMasqRules(r);
  nftMasqSkeleton();
  postroutingIntact('table inet t {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tgoto masq_checks\n\t}\n}\n');
  parseChain('\t\tip saddr 198.51.100.7 ip daddr != 198.51.100.0/24 masquerade comment "x" # handle 4\n');
}

function portmapPath(prev: Result): void {
  for (const backend of ['iptables', 'nftables']) {
    const raw = { cniVersion: '1.1.0', name: NETWORK, type: 'portmap', snat: true, backend, runtimeConfig: { portMappings }, prevResult: formatResult(prev, '1.1.0') };
    const conf = parseConfig(raw);
    const req = hostportRequest(conf, NETWORK, ID, 'eth0', prev);
    udpFlushes(req);
    localnetTarget(req);
    for (const family of [4, 6] as const) {
      const cidr = ipt.containerCidr(req, family);
      if (!cidr) continue;
      ipt.addPayload(req, family, cidr);
      ipt.delPayload(req, family);
      ipt.checkPlan(req, family, cidr);
      ipt.sharedSetupPayload(ipt.sharedRules(req));
    }
    ipt.parseJumps(`-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"${NETWORK}\\" id: \\"${ID}\\"" -m multiport --dports 8080 -j CNI-DN-0123456789abcdef01234\n`);
    nftHp.addScript(req);
    nftHp.delScript(req, [4, 6]);
    nftHp.containerScript(req);
  }
  // How a removal's end is read (the rehearsal's pretended processes print nothing).
  failedAtLine("iptables-restore: line 7 failed\nError occurred at line: 7\n", 7);
  interactiveOutcome('Error: syntax error, unexpected junk\n%cni-committed\n^\n');
}

function hostLocalPath(): void {
  const raw = { cniVersion: '1.1.0', name: NETWORK, type: 'bridge', ipam: { ...ipam, dataDir: '/var/lib/cni/networks' }, runtimeConfig: { ips: ['198.51.100.9/24'] } };
  const cfg = loadConfig(raw, NETWORK, '1.1.0');
  assignRequested(cfg.sets, requestedIps(raw, parseCniArgs('IP=198.51.100.9')));
  for (const set of cfg.sets) {
    const it = freeCandidates(set, undefined, new Set(['198.51.100.1', '198.51.100.2']));
    for (let i = 0; i < 3; i++) it.next();
  }
}

function resultsAndAddresses(result: Result): void {
  for (const v of SUPPORTED_VERSIONS) {
    const printed = formatResult(result, v);
    parseResult(printed, v);
    JSON.stringify(printed);
  }
  for (const s of ['198.51.100.7/24', '2001:db8::7/64', '::ffff:192.0.2.1/96']) formatCidr(parseCidr(s)!);
  formatIp(parseIp('2001:db8:0:0:1::1')!);
}

/** One child process with piped stdio, as every plugin request starts them (Node's child_process and stream code). */
async function spawnOnce(): Promise<void> {
  const r = await run('sh', ['-c', 'read -r x; echo "$x"'], { input: 'warm\n' });
  if (r.stdout !== 'warm\n') throw new Error(`sh echoed ${JSON.stringify(r.stdout)}`);
}

/** Each request stops at its first system check (no such netns) or at a validation error, with this code. */
async function requests(plugins: Record<string, Plugin>): Promise<void> {
  const env = (command: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: ID, CNI_NETNS: '/nonexistent/cni-warmup', CNI_IFNAME: 'eth0', CNI_PATH: '/nonexistent', CNI_ARGS: 'IgnoreUnknown=1' });
  const inputs: Array<[string, string, unknown, number]> = [
    ['bridge', 'ADD', bridgeRaw('iptables'), 4],
    ['bridge', 'ADD', { ...bridgeRaw('iptables'), mtu: 1 }, 7],
    ['bridge', 'ADD', '{not json', 6],
    ['bridge', 'VERSION', { cniVersion: '1.0.0' }, 0],
    ['portmap', 'ADD', { cniVersion: '1.1.0', name: NETWORK, type: 'portmap', runtimeConfig: { portMappings } }, 7],
    ['host-local', 'ADD', { cniVersion: '9.9.9', name: NETWORK, type: 'host-local' }, 1],
    ['host-local', 'ADD', { cniVersion: '1.1.0', name: 'bad name', type: 'host-local' }, 7],
  ];
  const wrong: string[] = [];
  for (const [name, command, conf, code] of inputs) {
    const plugin = plugins[name];
    if (!plugin) throw new Error(`no plugin ${name}`);
    const stdin = Buffer.from(typeof conf === 'string' ? conf : JSON.stringify(conf));
    const out = await runPlugin(plugin, { stdin, env: env(command), stderr: () => undefined });
    const got = out.exitCode === 0 ? 0 : (JSON.parse(out.stdout) as { code: number }).code;
    if (got !== code) wrong.push(`${name} ${command} ended with code ${got}, not ${code}: ${out.stdout.trim()}`);
  }
  if (wrong.length) throw new Error(wrong.join('; '));
}

/** Whole requests, with the machine pretended (lib/rehearsal.ts); fails naming a request that did not succeed. */
async function rehearse(plugins: Record<string, Plugin>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cni-rehearsal-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // CNI_PATH entries that exist (delegation looks them up); in a rehearsal they run in this process.
  for (const name of Object.keys(plugins)) {
    writeFileSync(join(bin, name), '');
    chmodSync(join(bin, name), 0o755);
    registerInProcess(name, plugins[name]!);
  }
  const env = (command: string, containerID = ID) => ({ PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: dir, CNI_IFNAME: 'eth0', CNI_PATH: bin, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=warm' });
  const call = async (name: string, command: string, conf: Record<string, unknown>, mustSucceed = false, containerID = ID) => {
    const out = await runPlugin(plugins[name]!, { stdin: Buffer.from(JSON.stringify(conf)), env: env(command, containerID), stderr: () => undefined });
    if (mustSucceed && out.exitCode !== 0) throw new Error(`${name} ${command} did not succeed: ${out.stdout.trim()}`);
    return out.stdout ? (JSON.parse(out.stdout) as Record<string, unknown>) : undefined;
  };
  const gcConf = (conf: Record<string, unknown>) => ({ ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'other', ifname: 'eth0' }] });
  rehearsal.on = true;
  try {
    for (const backend of ['iptables', 'nftables']) {
      const net = { ...bridgeRaw(backend), ipam: { ...ipam, dataDir: join(dir, 'data') } };
      const result = await call('bridge', 'ADD', net, true);
      const pm = { cniVersion: '1.1.0', name: NETWORK, type: 'portmap', backend, capabilities: { portMappings: true }, runtimeConfig: { portMappings }, prevResult: result };
      await call('portmap', 'ADD', pm, true);
      await call('bridge', 'CHECK', { ...net, prevResult: result });
      await call('portmap', 'CHECK', pm);
      await call('portmap', 'DEL', pm);
      await call('bridge', 'DEL', { ...net, prevResult: result });
      await call('bridge', 'DEL', net, false, 'other');
      for (const name of ['bridge', 'portmap']) {
        await call(name, 'STATUS', name === 'bridge' ? net : pm);
        await call(name, 'GC', gcConf(name === 'bridge' ? net : pm));
      }
    }
    const hl = { cniVersion: '1.1.0', name: NETWORK, type: 'x', ipam: { ...ipam, dataDir: join(dir, 'data') } };
    const r = await call('host-local', 'ADD', hl, true);
    await call('host-local', 'CHECK', { ...hl, prevResult: r });
    await call('host-local', 'STATUS', hl);
    await call('host-local', 'GC', gcConf(hl));
    await call('host-local', 'DEL', hl);
  } finally {
    rehearsal.on = false;
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The process's own path around a request (main, pluginMain, reading stdin, writing the result), which the
 * requests above enter below: a VERSION request with a file for stdin and stdout and an exit that only records.
 */
async function processPath(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cni-warmup-io-'));
  const input = join(dir, 'stdin');
  const output = join(dir, 'stdout');
  writeFileSync(input, JSON.stringify({ cniVersion: '1.0.0' }));
  const stdin = openSync(input, 'r');
  const stdout = openSync(output, 'w');
  let code: number | undefined;
  try {
    await main('bridge', [], { env: { CNI_COMMAND: 'VERSION' }, stdin, stdout, exit: (c) => (code = c) });
    const out = readFileSync(output, 'utf8');
    if (code !== 0 || !out.includes('supportedVersions')) throw new Error(`VERSION through main ended with ${code}: ${out.trim()}`);
  } finally {
    closeSync(stdin);
    closeSync(stdout);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Never throws: a step that fails only leaves its functions to be compiled at run time. Returns what failed
 * (a unit test keeps it empty).
 */
export async function warmup(plugins: Record<string, Plugin>): Promise<string[]> {
  const failed: string[] = [];
  const step = async (name: string, f: () => unknown) => {
    try {
      await f();
    } catch (e) {
      failed.push(`${name}: ${(e as Error).message}`);
    }
  };
  let result: Result | undefined;
  await step('bridge', () => (result = bridgePath()));
  await step('masquerade', masqueradePath);
  if (result) await step('portmap', () => portmapPath(result!));
  if (result) await step('results', () => resultsAndAddresses(result!));
  await step('host-local', hostLocalPath);
  await step('requests', () => requests(plugins));
  await step('rehearsal', () => rehearse(plugins));
  await step('spawn', spawnOnce);
  await step('process', processPath);
  return failed;
}

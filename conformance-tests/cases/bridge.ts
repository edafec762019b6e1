/**
 * bridge (with host-local) as the spec and its documentation describe it: results per version matched against
 * the kernel, connectivity between containers and to the gateway, masquerade present and removed, idempotent
 * DEL with and without the netns, CHECK, refusal of an existing or unusable interface name, and GC forwarding.
 */
import type { Attachment, Env } from '../env';
import { mentions, WORLD } from '../env';
import { check, show, Skip, type Case } from '../harness';
import { cmp, type PluginSet } from '../probe';
import { checkResult } from '../shape';
import { ALL_VERSIONS, bridgeConf, expectError, firstIp, needVersion, versionFor, withPrev } from './common';

const P = ['bridge', 'host-local'];
const ONE: [string, string] = ['198.51.100.10', '198.51.100.10'];

async function add(env: Env, conf: any, a?: Attachment) {
  const att = a ?? (await env.attachment());
  const res = await env.ok('bridge', 'ADD', conf, att);
  return { a: att, res };
}

/** Host-namespace link names, to see what an ADD left behind. */
const hostLinks = async (env: Env) => (await env.links(env.hostNs)).map((l) => l.ifname).sort();

/** The host-side interfaces a result reports (no sandbox), other than the bridge. */
const hostVeths = (res: any, conf: any): string[] => (res.interfaces ?? []).filter((i: any) => !i.sandbox && i.name !== conf.bridge).map((i: any) => i.name);

async function masqueradeWorks(env: Env, a: Attachment, port: number): Promise<void> {
  const world = await env.world();
  await env.serve(world, WORLD.worldIp, port, 'world');
  const r = await env.connect(a.ns, WORLD.worldIp, port);
  check(r.ok, `container -> ${WORLD.worldIp}:${port} (outside, no route back) failed: ${r.text}`);
  check(r.text === `world ${WORLD.hostIp}`, `the outside saw ${show(r.text)}, expected the host address ${WORLD.hostIp} (masqueraded)`);
}

async function leftovers(env: Env, ip: string, id: string): Promise<string[]> {
  return mentions(await env.netfilter(), [ip, id]);
}

const shapeCases: Case[] = ALL_VERSIONS.map((v) => ({
  id: `bridge/add@${v}`,
  basis: 'SPEC §5 ADD Success (shape per version, interface index, sandbox)',
  level: 'must',
  plugins: P,
  async run(env, set) {
    needVersion(set, P, v);
    const conf = bridgeConf(env, v, { families: [4, 6] });
    const { a, res } = await add(env, conf);
    const c = checkResult(res, { version: v, kind: 'interface', netns: a.netns, ifname: a.ifname, families: [4, 6] });
    const link = (await env.links(a.ns)).find((l) => l.ifname === a.ifname);
    check(link, `no ${a.ifname} in the container after ADD`);
    if (c.sandboxIface?.mac) check(link.address?.toLowerCase() === c.sandboxIface.mac.toLowerCase(), `result mac ${c.sandboxIface.mac}, the interface has ${link.address}`);
    for (const ip of c.ips) {
      const [addr, len] = ip.address.split('/');
      check(link.addr_info.some((x) => x.local === addr && String(x.prefixlen) === len), `${ip.address} is not on ${a.ifname} (it has ${show(link.addr_info.map((x) => `${x.local}/${x.prefixlen}`))})`);
    }
    if (cmp(v, '0.4.0') >= 0) await env.ok('bridge', 'CHECK', withPrev(conf, res), a);
    await env.ok('bridge', 'DEL', withPrev(conf, res), a);
    check(!(await env.links(a.ns)).some((l) => l.ifname === a.ifname), `${a.ifname} is still in the container after DEL`);
  },
}));

/** ipMasqBackend, when the case asks for one; `suffix` names the case variant. */
const BACKENDS = [
  { suffix: '', extra: {} },
  { suffix: '-nftables', extra: { ipMasqBackend: 'nftables' } },
];

/** Skips when nftables was asked for and the plugin wrote iptables rules for the attachment anyway. */
async function requireBackend(env: Env, extra: Record<string, unknown>, ip: string, id: string): Promise<void> {
  if (extra.ipMasqBackend !== 'nftables') return;
  const legacy = mentions((await env.exec('iptables-save', [])).stdout, [ip, id]);
  if (legacy.length) throw new Skip(`ipMasqBackend "nftables" is not supported: the plugin wrote iptables rules (${show(legacy[0])})`);
}

const masqCases: Case[] = BACKENDS.map(({ suffix, extra }, i) => ({
  id: `bridge/masquerade${suffix}`,
  basis: 'bridge docs (ipMasq); SPEC §2 DEL',
  level: 'must',
  plugins: P,
  async run(env, set) {
    const conf = bridgeConf(env, versionFor(set, P), { ipMasq: true, extra });
    const { a, res } = await add(env, conf);
    const ip = firstIp(res);
    await requireBackend(env, extra, ip, a.containerID);
    await masqueradeWorks(env, a, 7002 + i);
    await env.ok('bridge', 'DEL', withPrev(conf, res), a);
    const left = await leftovers(env, ip, a.containerID);
    check(left.length === 0, `after DEL the host netfilter still mentions ${ip}/${a.containerID}: ${show(left)}`);
  },
}));

const lateDelCases: Case[] = BACKENDS.map(({ suffix, extra }) => ({
  id: `bridge/del-without-netns-cleans-up${suffix}`,
  basis: 'SPEC §2 DEL ("bridge should ... clean up its own resources even if the netns no longer exists")',
  level: 'should',
  plugins: P,
  async run(env, set) {
    const conf = bridgeConf(env, versionFor(set, P), { ipMasq: true, range: ONE, extra });
    const { a, res } = await add(env, conf);
    const ip = firstIp(res);
    await requireBackend(env, extra, ip, a.containerID);
    await env.removeNetns(a.ns);
    await env.ok('bridge', 'DEL', withPrev(conf, res), { ...a, netns: '' });
    const problems: string[] = [];
    const left = await leftovers(env, ip, a.containerID);
    if (left.length) problems.push(`masquerade rules left for ${ip}/${a.containerID}: ${show(left)}`);
    const veths = (await hostLinks(env)).filter((n) => hostVeths(res, conf).includes(n));
    if (veths.length) problems.push(`host veth ${veths.join(', ')} left`);
    const next = await env.attachment();
    const r = await env.call('bridge', { command: 'ADD', conf, containerID: next.containerID, netns: next.netns });
    if (r.code !== 0) problems.push(`${ip} was not released (the next ADD on a one-address pool failed: ${show(r.stdout)})`);
    check(problems.length === 0, problems.join('; '));
  },
}));

const gcCases: Case[] = BACKENDS.map(({ suffix, extra }) => ({
  id: `bridge/gc-cleans-stale${suffix}`,
  basis: 'SPEC §2 GC (MUST forward to IPAM; SHOULD remove stale reservations and firewall rules)',
  level: 'should',
  plugins: P,
  async run(env, set) {
    needVersion(set, P, '1.1.0');
    const conf = bridgeConf(env, '1.1.0', { ipMasq: true, range: ONE, extra });
    const { a, res } = await add(env, conf);
    const ip = firstIp(res);
    await requireBackend(env, extra, ip, a.containerID);
    await env.removeNetns(a.ns);
    const gc = { ...conf, 'cni.dev/valid-attachments': [] };
    const r = await env.call('bridge', { command: 'GC', conf: gc, unset: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] });
    check(r.code === 0, `GC failed (exit ${r.code}): ${show(r.stdout || r.stderr)}`);
    // Before the next ADD, which may take the same address.
    const left = await leftovers(env, ip, a.containerID);
    const next = await env.attachment();
    const again = await env.call('bridge', { command: 'ADD', conf, containerID: next.containerID, netns: next.netns });
    const problems = [
      ...(again.code === 0 ? [] : [`GC did not release ${ip} (ADD on the one-address pool: ${show(again.stdout)})`]),
      ...(left.length ? [`GC left masquerade rules for the stale attachment: ${show(left)}`] : []),
    ];
    check(problems.length === 0, problems.join('; '));
  },
}));

/** Six bridge ADDs at once for different containers; with `warmUp`, onto a bridge that already exists. */
async function concurrentAdds(env: Env, set: PluginSet, warmUp: boolean): Promise<void> {
  const conf = bridgeConf(env, versionFor(set, P), { ipMasq: true });
  if (warmUp) {
    // One container attached and removed first, so the bridge and its gateway address exist before the racers.
    const w = await env.attachment();
    const r = await env.ok('bridge', 'ADD', conf, w);
    await env.ok('bridge', 'DEL', withPrev(conf, r), w);
  }
  const atts = await Promise.all(Array.from({ length: 6 }, () => env.attachment()));
  const adds = await Promise.all(atts.map((a) => env.call('bridge', { command: 'ADD', conf, containerID: a.containerID, netns: a.netns })));
  const bad = adds.map((r, i) => [r, i] as const).filter(([r]) => r.code !== 0);
  check(bad.length === 0, `${bad.length} of 6 concurrent ADDs failed: ${show(bad[0]?.[0].stdout)}`);
  const ips = adds.map((r) => firstIp(r.json));
  check(new Set(ips).size === 6, `concurrent ADDs got duplicate addresses: ${ips.join(' ')}`);
  await env.serve(atts[5]!.ns, ips[5]!, 7004, 'last');
  for (const a of atts.slice(0, 5)) {
    const r = await env.connect(a.ns, ips[5]!, 7004);
    check(r.ok, `${a.containerID} cannot reach ${ips[5]}:7004 after concurrent ADDs: ${r.text}`);
  }
  const dels = await Promise.all(atts.map((a, i) => env.call('bridge', { command: 'DEL', conf: withPrev(conf, adds[i]!.json), containerID: a.containerID, netns: a.netns })));
  check(dels.every((r) => r.code === 0), `concurrent DELs failed: ${show(dels.find((r) => r.code !== 0)?.stdout)}`);
  const left = mentions(await env.netfilter(), [...ips, ...atts.map((a) => a.containerID)]);
  check(left.length === 0, `after concurrent DELs the host netfilter still mentions them: ${show(left)}`);
}

export const bridgeCases: Case[] = [
  ...shapeCases,
  {
    id: 'bridge/connectivity',
    basis: 'bridge docs (containers on one bridge reach each other)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P));
      const one = await add(env, conf);
      const two = await add(env, conf);
      const ip2 = firstIp(two.res);
      await env.serve(two.a.ns, ip2, 7000, 'two');
      const r = await env.connect(one.a.ns, ip2, 7000);
      check(r.ok && r.text === `two ${firstIp(one.res)}`, `container one -> two (${ip2}:7000): ${show(r.text)}`);
    },
  },
  {
    id: 'bridge/concurrent',
    basis: 'SPEC §3 Lifecycle (plugins must handle concurrent calls for different containers)',
    level: 'must',
    plugins: P,
    run: (env, set) => concurrentAdds(env, set, true),
  },
  {
    id: 'bridge/concurrent-new-bridge',
    basis: 'concurrent ADDs racing to create the same bridge and gateway address',
    level: 'should',
    plugins: P,
    run: (env, set) => concurrentAdds(env, set, false),
  },
  {
    id: 'bridge/mtu',
    basis: 'bridge docs (mtu)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P), { extra: { mtu: 1400 } });
      const a = await env.attachment();
      await env.ok('bridge', 'ADD', conf, a);
      const link = JSON.parse(await env.mustExec('ip', ['-j', 'link', 'show', a.ifname], a.ns))[0];
      check(link?.mtu === 1400, `mtu 1400 configured, ${a.ifname} has ${link?.mtu}`);
    },
  },
  {
    id: 'bridge/gateway',
    basis: 'bridge docs (isGateway, isDefaultGateway)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const v = versionFor(set, P, '0.3.0');
      const conf = bridgeConf(env, v);
      const { a, res } = await add(env, conf);
      const gw = res.ips[0].gateway;
      check(gw, `result.ips[0] has no gateway with isGateway: ${show(res.ips)}`);
      const br = (await env.links(env.hostNs)).find((l) => l.ifname === conf.bridge);
      check(br?.addr_info.some((x) => x.local === gw), `bridge ${conf.bridge} does not hold the gateway ${gw}`);
      const routes = JSON.parse(await env.mustExec('ip', ['-j', 'route', 'show', 'default'], a.ns));
      check(routes.some((r: any) => r.gateway === gw), `the container's default route is not via ${gw}: ${show(routes)}`);
      await env.serve(env.hostNs, gw, 7001, 'host');
      const r = await env.connect(a.ns, gw, 7001);
      check(r.ok && r.text === `host ${firstIp(res)}`, `container -> gateway ${gw}:7001: ${show(r.text)}`);
    },
  },
  ...masqCases,
  {
    id: 'bridge/del-idempotent',
    basis: 'SPEC §2 DEL (multiple DELs, empty prevResult)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P));
      const never = await env.attachment();
      await env.ok('bridge', 'DEL', conf, never);
      const { a, res } = await add(env, conf);
      await env.ok('bridge', 'DEL', withPrev(conf, res), a);
      await env.ok('bridge', 'DEL', withPrev(conf, res), a);
      await env.ok('bridge', 'DEL', conf, a);
      check(!(await env.links(a.ns)).some((l) => l.ifname === a.ifname), `${a.ifname} is still in the container after DEL`);
      const left = (await hostLinks(env)).filter((n) => hostVeths(res, conf).includes(n));
      check(left.length === 0, `host veth ${left.join(', ')} is still there after DEL`);
    },
  },
  {
    id: 'bridge/del-without-netns',
    basis: 'SPEC §2 DEL (CNI_NETNS optional; succeed when resources are gone)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P), { ipMasq: true });
      const { a, res } = await add(env, conf);
      await env.removeNetns(a.ns);
      await env.ok('bridge', 'DEL', withPrev(conf, res), { ...a, netns: '' });
      await env.ok('bridge', 'DEL', withPrev(conf, res), { ...a, netns: '' });
    },
  },
  ...lateDelCases,
  {
    id: 'bridge/check',
    basis: 'SPEC §2 CHECK',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P, '0.4.0'));
      const { a, res } = await add(env, conf);
      await env.ok('bridge', 'CHECK', withPrev(conf, res), a);
    },
  },
  {
    id: 'bridge/check-detects-missing-interface',
    basis: 'SPEC §2 CHECK (error when a listed interface is missing)',
    level: 'should',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P, '0.4.0'));
      const { a, res } = await add(env, conf);
      await env.mustExec('ip', ['link', 'del', a.ifname], a.ns);
      const r = await env.call('bridge', { command: 'CHECK', conf: withPrev(conf, res), containerID: a.containerID, netns: a.netns, ifname: a.ifname });
      expectError(r, `CHECK after ${a.ifname} was deleted`);
    },
  },
  {
    id: 'bridge/existing-ifname',
    basis: 'SPEC §2 ADD (interface of that name already exists: MUST error)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P));
      const a = await env.attachment();
      await env.mustExec('ip', ['link', 'add', a.ifname, 'type', 'bridge'], a.ns);
      const r = await env.call('bridge', { command: 'ADD', conf, containerID: a.containerID, netns: a.netns, ifname: a.ifname });
      expectError(r, `ADD when ${a.ifname} exists in the container`);
      const link = (await env.links(a.ns)).find((l) => l.ifname === a.ifname);
      check(link, `the existing ${a.ifname} is gone after the refused ADD`);
    },
  },
  {
    id: 'bridge/unusable-ifname',
    basis: 'SPEC §2 parameters (unable to use CNI_IFNAME: MUST error)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P));
      const a = await env.attachment();
      const before = await hostLinks(env);
      const r = await env.call('bridge', { command: 'ADD', conf, containerID: a.containerID, netns: a.netns, ifname: 'x'.repeat(16) });
      expectError(r, 'ADD with a 16-character CNI_IFNAME');
      check(show(await hostLinks(env)) === show(before), `the refused ADD changed the host links: ${show(before)} -> ${show(await hostLinks(env))}`);
    },
  },
  {
    id: 'bridge/config-error-leaves-nothing',
    basis: 'bridge docs (hairpinMode and promiscMode exclude each other); SPEC §5 Error',
    level: 'should',
    plugins: P,
    async run(env, set) {
      const good = bridgeConf(env, versionFor(set, P), { range: ONE });
      const conf = { ...good, hairpinMode: true, promiscMode: true };
      const a = await env.attachment();
      const before = await hostLinks(env);
      expectError(await env.call('bridge', { command: 'ADD', conf, containerID: a.containerID, netns: a.netns }), 'ADD with hairpinMode and promiscMode');
      const after = await hostLinks(env);
      check(show(after) === show(before), `the refused ADD changed the host links: ${show(before)} -> ${show(after)}`);
      check(!(await env.links(a.ns)).some((l) => l.ifname === a.ifname), `the refused ADD created ${a.ifname} in the container`);
      const next = await env.attachment();
      const r = await env.call('bridge', { command: 'ADD', conf: good, containerID: next.containerID, netns: next.netns });
      check(r.code === 0, `the refused ADD kept the only address of the pool (a valid ADD then failed: ${show(r.stdout)})`);
    },
  },
  {
    id: 'bridge/failed-add-leaves-nothing',
    basis: 'SPEC §4 (IPAM failure on ADD); bridge docs',
    level: 'should',
    plugins: P,
    async run(env, set) {
      const conf = bridgeConf(env, versionFor(set, P), { subnet4: '198.51.100.0/31' });
      const a = await env.attachment();
      const before = await hostLinks(env);
      const r = await env.call('bridge', { command: 'ADD', conf, containerID: a.containerID, netns: a.netns });
      expectError(r, 'ADD with a /31 IPAM subnet');
      const after = await hostLinks(env);
      const inCtr = (await env.links(a.ns)).some((l) => l.ifname === a.ifname);
      check(show(after) === show(before) && !inCtr, `the failed ADD left links behind: host ${show(before)} -> ${show(after)}${inCtr ? `, ${a.ifname} in the container` : ''}`);
    },
  },
  ...gcCases,
];

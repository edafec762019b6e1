/**
 * host-local as documented: results per version, unique addresses under concurrency, release on DEL,
 * requested IPs, idempotent DEL, CHECK, and (1.1.0) STATUS on exhaustion and GC releasing stale reservations.
 */
import { contains, parseCidr, parseIp } from '../../lib/ip';
import type { Env } from '../env';
import { check, show, type Case } from '../harness';
import { cmp } from '../probe';
import { checkResult } from '../shape';
import { ALL_VERSIONS, bare, expectError, firstIp, IPAM4, ipamConf, needVersion, versionFor, withPrev } from './common';

const P = ['host-local'];
/** A pool of exactly two addresses. */
const TWO: [string, string] = ['192.0.2.10', '192.0.2.11'];

async function add(env: Env, conf: any, id?: string, args?: string) {
  const a = await env.attachment();
  if (id) a.containerID = id;
  const res = await env.ok('host-local', 'ADD', conf, a, args ? { args } : {});
  return { a, res };
}

const shapeCases: Case[] = ALL_VERSIONS.map((v) => ({
  id: `host-local/add@${v}`,
  basis: 'SPEC §5 ADD Success, Delegated plugins (IPAM)',
  level: 'must',
  plugins: P,
  async run(env, set) {
    needVersion(set, P, v);
    const conf = ipamConf(env, v, { families: [4, 6] });
    const { a, res } = await add(env, conf);
    const c = checkResult(res, { version: v, kind: 'ipam', families: [4, 6] });
    for (const ip of c.ips) {
      const subnet = parseCidr(ip.family === 4 ? IPAM4 : '2001:db8:c0::/64')!;
      check(contains(subnet, parseIp(bare(ip.address))!), `${ip.address} is outside the configured subnet`);
    }
    if (cmp(v, '0.4.0') >= 0) await env.ok('host-local', 'CHECK', withPrev(conf, res), a);
    await env.ok('host-local', 'DEL', withPrev(conf, res), a);
  },
}));

export const hostLocalCases: Case[] = [
  ...shapeCases,
  {
    id: 'host-local/unique-concurrent',
    basis: 'SPEC §3 Lifecycle (concurrency, locking); host-local docs',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = ipamConf(env, versionFor(set, P));
      const results = await Promise.all(Array.from({ length: 8 }, () => add(env, conf)));
      const ips = results.map((r) => firstIp(r.res));
      check(new Set(ips).size === ips.length, `8 concurrent ADDs got duplicate addresses: ${ips.join(' ')}`);
      for (const r of results) {
        const gw = (r.res.ips ?? [r.res.ip4])[0]?.gateway;
        check(!gw || !ips.includes(gw), `the gateway ${gw} was handed out`);
        check(firstIp(r.res) !== '192.0.2.0' && firstIp(r.res) !== '192.0.2.255', `handed out ${firstIp(r.res)}`);
      }
    },
  },
  {
    id: 'host-local/exhaustion-and-release',
    basis: 'host-local docs (rangeStart/rangeEnd, DEL releases)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = ipamConf(env, versionFor(set, P), { range: TWO });
      const first = await add(env, conf);
      const second = await add(env, conf);
      const got = [firstIp(first.res), firstIp(second.res)].sort();
      check(show(got) === show(TWO), `a pool of ${TWO.join('-')} gave ${got.join(', ')}`);
      const c = await env.attachment();
      expectError(await env.call('host-local', { command: 'ADD', conf, containerID: c.containerID, netns: c.netns }), 'ADD on an exhausted pool');
      await env.ok('host-local', 'DEL', withPrev(conf, first.res), first.a);
      const again = await env.ok('host-local', 'ADD', conf, c);
      check(firstIp(again) === firstIp(first.res), `after DEL of ${firstIp(first.res)} the next ADD got ${firstIp(again)}`);
    },
  },
  {
    id: 'host-local/gateway-and-routes',
    basis: 'host-local docs (gateway, routes)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const v = versionFor(set, P, '0.3.0');
      const conf = {
        ...ipamConf(env, v),
        ipam: { type: 'host-local', ranges: [[{ subnet: IPAM4, gateway: '192.0.2.254' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '203.0.113.0/24', gw: '192.0.2.253' }], dataDir: `${env.dir}/ipam` },
      };
      const { res } = await add(env, conf);
      check(res.ips?.[0]?.gateway === '192.0.2.254', `configured gateway 192.0.2.254, result says ${show(res.ips)}`);
      const routes = (res.routes ?? []).map((r: any) => `${r.dst}${r.gw ? ` via ${r.gw}` : ''}`).sort();
      check(show(routes) === show(['0.0.0.0/0', '203.0.113.0/24 via 192.0.2.253']), `configured routes missing from the result: ${show(res.routes)}`);
      const ip = firstIp(res);
      check(ip !== '192.0.2.254', `handed out the gateway ${ip}`);
    },
  },
  {
    id: 'host-local/requested-ip',
    basis: 'host-local docs (CNI_ARGS IP=)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = ipamConf(env, versionFor(set, P));
      const { res } = await add(env, conf, undefined, 'IgnoreUnknown=1;IP=192.0.2.77');
      check(firstIp(res) === '192.0.2.77', `asked for 192.0.2.77, got ${firstIp(res)}`);
      const c = await env.attachment();
      const r = await env.call('host-local', { command: 'ADD', conf, containerID: c.containerID, netns: c.netns, args: 'IgnoreUnknown=1;IP=192.0.2.77' });
      expectError(r, 'a second container asking for the same IP');
    },
  },
  {
    id: 'host-local/del-idempotent',
    basis: 'SPEC §2 DEL (multiple DELs succeed; no netns needed)',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = ipamConf(env, versionFor(set, P));
      const never = await env.attachment();
      await env.ok('host-local', 'DEL', conf, never);
      const { a, res } = await add(env, conf);
      await env.ok('host-local', 'DEL', withPrev(conf, res), a);
      await env.ok('host-local', 'DEL', withPrev(conf, res), a);
      await env.ok('host-local', 'DEL', conf, { ...a, netns: '' });
    },
  },
  {
    id: 'host-local/check',
    basis: 'SPEC §2 CHECK',
    level: 'must',
    plugins: P,
    async run(env, set) {
      const conf = ipamConf(env, versionFor(set, P, '0.4.0'));
      const { a, res } = await add(env, conf);
      await env.ok('host-local', 'CHECK', withPrev(conf, res), a);
    },
  },
  {
    id: 'host-local/status-exhausted',
    basis: 'SPEC §2 STATUS (exhausted resources)',
    level: 'should',
    plugins: P,
    async run(env, set) {
      needVersion(set, P, '1.1.0');
      const conf = ipamConf(env, '1.1.0', { range: TWO });
      await add(env, conf);
      await add(env, conf);
      const r = await env.call('host-local', { command: 'STATUS', conf, unset: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] });
      expectError(r, 'STATUS with no address left', { codes: [50, 51] });
    },
  },
  {
    id: 'host-local/gc-releases',
    basis: 'SPEC §2 GC (remove reservations not in the list)',
    level: 'should',
    plugins: P,
    async run(env, set) {
      needVersion(set, P, '1.1.0');
      const conf = ipamConf(env, '1.1.0', { range: TWO });
      const keep = await add(env, conf);
      const stale = await add(env, conf);
      const gc = { ...conf, 'cni.dev/valid-attachments': [{ containerID: keep.a.containerID, ifname: keep.a.ifname }] };
      const r = await env.call('host-local', { command: 'GC', conf: gc, unset: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] });
      check(r.code === 0, `GC failed (exit ${r.code}): ${show(r.stdout || r.stderr)}`);
      const next = await add(env, conf);
      check(firstIp(next.res) === firstIp(stale.res), `after GC the free address should be ${firstIp(stale.res)}, got ${firstIp(next.res)}`);
      await env.ok('host-local', 'CHECK', withPrev(conf, keep.res), keep.a);
    },
  },
];

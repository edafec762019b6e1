/**
 * SPEC.md section 2 for every plugin the directory holds: VERSION, version negotiation, required environment,
 * decode errors, command gates, and STATUS/GC where the plugin lists 1.1.0.
 */
import type { Env } from '../env';
import { check, show, type Case } from '../harness';
import { KNOWN_PLUGINS } from '../probe';
import { bridgeConf, expectError, ipamConf, needVersion, NET, versionFor } from './common';

const SEMVER = /^\d+\.\d+\.\d+$/;

/** A config the plugin would accept, so that only the thing under test is wrong. */
function validConf(env: Env, plugin: string, version: string): Record<string, unknown> {
  if (plugin === 'bridge') return bridgeConf(env, version);
  if (plugin === 'host-local') return ipamConf(env, version);
  return { cniVersion: version, name: NET, type: plugin, runtimeConfig: { portMappings: [] } };
}

function forPlugin(p: string): Case[] {
  const deps = p === 'bridge' ? [p, 'host-local'] : [p];
  const attach = async (env: Env) => env.attachment();
  return [
    {
      id: `protocol/${p}/version`,
      basis: 'SPEC §2 VERSION, §5 Version',
      level: 'must',
      plugins: [p],
      async run(_env, set) {
        const r = set.get(p)!.version;
        check(r.code === 0, `VERSION exited ${r.code}: ${show(r.stdout || r.stderr)}`);
        let j: any;
        try {
          j = JSON.parse(r.stdout);
        } catch {
          throw new Error(`VERSION printed no JSON: ${show(r.stdout)}`);
        }
        check(typeof j.cniVersion === 'string' && SEMVER.test(j.cniVersion), `VERSION: cniVersion ${show(j.cniVersion)} is not a version`);
        check(Array.isArray(j.supportedVersions) && j.supportedVersions.length > 0, `VERSION: supportedVersions missing or empty: ${show(j)}`);
        for (const v of j.supportedVersions) check(typeof v === 'string' && SEMVER.test(v), `VERSION: ${show(v)} in supportedVersions is not a version`);
      },
    },
    {
      id: `protocol/${p}/unsupported-version`,
      basis: 'SPEC §5 Error code 1',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        const a = await attach(env);
        const conf = { ...validConf(env, p, versionFor(set, deps)), cniVersion: '99.0.0' };
        const r = await env.call(p, { command: 'ADD', conf, containerID: a.containerID, netns: a.netns });
        expectError(r, 'ADD with cniVersion 99.0.0', { codes: [1] });
      },
    },
    {
      id: `protocol/${p}/missing-env`,
      basis: 'SPEC §2 required parameters, §5 Error code 4',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        const a = await attach(env);
        const conf = validConf(env, p, versionFor(set, deps));
        const wants: Array<[string, string]> = [
          ['ADD', 'CNI_CONTAINERID'],
          ['ADD', 'CNI_NETNS'],
          ['ADD', 'CNI_IFNAME'],
          ['DEL', 'CNI_CONTAINERID'],
          ['DEL', 'CNI_IFNAME'],
        ];
        for (const [command, v] of wants) {
          const r = await env.call(p, { command, conf, containerID: a.containerID, netns: a.netns, unset: [v] });
          expectError(r, `${command} without ${v}`, { codes: [4], names: [v] });
        }
      },
    },
    {
      id: `protocol/${p}/unknown-command`,
      basis: 'SPEC §5 Error code 4',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        const a = await attach(env);
        const r = await env.call(p, { command: 'FROB', conf: validConf(env, p, versionFor(set, deps)), containerID: a.containerID, netns: a.netns });
        expectError(r, 'CNI_COMMAND=FROB', { codes: [4], names: ['CNI_COMMAND'] });
      },
    },
    {
      id: `protocol/${p}/no-command`,
      basis: 'SPEC §2 parameters (CNI_COMMAND required)',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        // The Go skel prints an "about" text on stderr and exits 0 without CNI_COMMAND; what no plugin may do is
        // act on the request. So: an error JSON, or no output on stdout at all.
        const a = await attach(env);
        const r = await env.call(p, { command: 'ADD', conf: validConf(env, p, versionFor(set, deps)), containerID: a.containerID, netns: a.netns, unset: ['CNI_COMMAND'] });
        if (r.code !== 0) expectError(r, 'no CNI_COMMAND', { codes: [4] });
        else check(r.stdout.trim() === '', `no CNI_COMMAND: exit 0 with output ${show(r.stdout)}`);
        check(!(await env.links(a.ns)).some((l) => l.ifname === a.ifname), 'no CNI_COMMAND: an interface was created in the container');
      },
    },
    {
      id: `protocol/${p}/decode-error`,
      basis: 'SPEC §5 Error code 6',
      level: 'must',
      plugins: deps,
      async run(env) {
        const a = await attach(env);
        const r = await env.call(p, { command: 'ADD', conf: '{"cniVersion":', containerID: a.containerID, netns: a.netns });
        expectError(r, 'truncated JSON on stdin', { codes: [6] });
      },
    },
    {
      id: `protocol/${p}/error-cniversion`,
      basis: 'SPEC §5 Error (cniVersion key)',
      level: 'should',
      plugins: deps,
      async run(env, set) {
        const a = await attach(env);
        const v = versionFor(set, deps);
        const r = await env.call(p, { command: 'ADD', conf: validConf(env, p, v), containerID: a.containerID, netns: a.netns, unset: ['CNI_NETNS'] });
        const e = expectError(r, 'ADD without CNI_NETNS', { codes: [4] });
        check(e.cniVersion === v, `the error JSON has cniVersion ${show(e.cniVersion)}, the request's is ${v}: ${show(e)}`);
      },
    },
    {
      id: `protocol/${p}/check-needs-0.4.0`,
      basis: 'SPEC v0.4.0 introduced CHECK',
      level: 'should',
      plugins: deps,
      async run(env, set) {
        needVersion(set, deps, '0.3.1');
        const a = await attach(env);
        const r = await env.call(p, { command: 'CHECK', conf: validConf(env, p, '0.3.1'), containerID: a.containerID, netns: a.netns });
        expectError(r, 'CHECK with cniVersion 0.3.1', { codes: [1] });
      },
    },
    {
      id: `protocol/${p}/status`,
      basis: 'SPEC §2 STATUS',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        needVersion(set, deps, '1.1.0');
        const r = await env.call(p, { command: 'STATUS', conf: validConf(env, p, '1.1.0'), containerID: '', netns: '', ifname: '', unset: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] });
        check(r.code === 0, `STATUS of a usable config failed (exit ${r.code}): ${show(r.stdout || r.stderr)}`);
        check(r.stdout.trim() === '', `STATUS printed ${show(r.stdout)}; success has no output`);
      },
    },
    {
      id: `protocol/${p}/gc`,
      basis: 'SPEC §2 GC',
      level: 'must',
      plugins: deps,
      async run(env, set) {
        needVersion(set, deps, '1.1.0');
        const conf = { ...validConf(env, p, '1.1.0'), 'cni.dev/valid-attachments': [] };
        const r = await env.call(p, { command: 'GC', conf, unset: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'] });
        check(r.code === 0, `GC with no attachments failed (exit ${r.code}): ${show(r.stdout || r.stderr)}`);
        check(r.stdout.trim() === '', `GC printed ${show(r.stdout)}; success has no output`);
      },
    },
  ];
}

export const protocolCases: Case[] = KNOWN_PLUGINS.flatMap(forPlugin);

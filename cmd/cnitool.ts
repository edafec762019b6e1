/**
 * cnitool: the upstream CLI over lib/runtime, so existing habits and scripts work.
 *   cnitool add|check|del|gc|status <network> [<netns>]     (-i/--ifname NAME)
 * Environment: NETCONFPATH (default /etc/cni/net.d), CNI_PATH, CNI_ARGS, CAP_ARGS (JSON), CNI_IFNAME (default
 * eth0), and ours: CNI_CACHE_DIR (default /var/lib/cni). The container ID is derived from the netns path as
 * upstream does. ADD prints the result; any failure prints the CNI error JSON on stdout and one readable line
 * on stderr, and exits 1.
 */
import { sha512Hex } from '../lib/hash';
import { basename, resolve } from 'node:path';
import { asCniError, envError } from '../lib/errors';
import { CniRuntime } from '../lib/runtime/api';
import { loadNetworkConf, type NetworkConfigList } from '../lib/runtime/conf';
import type { RuntimeConf } from '../lib/runtime/request';
import { LATEST_VERSION } from '../lib/version';

const COMMANDS = ['add', 'check', 'del', 'gc', 'status'] as const;
type ToolCommand = (typeof COMMANDS)[number];

function usage(exe: string): string {
  return [
    `${exe}: Add, check, remove, gc or status network interfaces from a network namespace`,
    ...COMMANDS.map((c) => `  ${exe} ${c.padEnd(6)} <net> ${c === 'gc' || c === 'status' ? '[<netns>]' : '<netns>'}`),
    'Options: -i, --ifname NAME (default $CNI_IFNAME or eth0)',
    'Environment: NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS, CNI_IFNAME, CNI_CACHE_DIR',
  ].join('\n');
}

/** "K1=V1;K2=V2" into ordered pairs; like upstream, an empty key or value is an error. */
export function parseToolArgs(raw: string): [string, string][] {
  return raw
    .split(';')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0 || eq === pair.length - 1) throw envError(`CNI_ARGS: invalid pair "${pair}" (want KEY=VALUE)`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    });
}

function parseCapArgs(raw: string | undefined): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw envError(`CAP_ARGS: not JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw envError(`CAP_ARGS: expected a JSON object (got ${raw.slice(0, 60)})`);
  return v as Record<string, unknown>;
}

/** Upstream's container ID: "cnitool-" and the first 10 bytes of sha512(absolute netns path) in hex. */
export const containerIdFor = (netnsPath: string) => `cnitool-${sha512Hex(netnsPath).slice(0, 20)}`;

interface Parsed {
  command: ToolCommand;
  network: string;
  netns?: string;
  ifname?: string;
}

function parseCommandLine(args: string[]): Parsed | string {
  const rest: string[] = [];
  let ifname: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help') return '';
    if (a === '-i' || a === '--ifname') {
      ifname = args[++i];
      if (ifname === undefined) return `${a} needs a value`;
    } else if (a.startsWith('--ifname=')) ifname = a.slice('--ifname='.length);
    else rest.push(a);
  }
  const [command, network, netns] = rest;
  if (!command) return 'no command given';
  if (!COMMANDS.includes(command as ToolCommand)) return `unknown command "${command}"`;
  if (!network) return 'no network name given';
  if (!netns && (command === 'add' || command === 'check' || command === 'del')) return `${command} needs a network namespace path`;
  return { command: command as ToolCommand, network, netns, ifname };
}

export async function cnitool(args: string[]): Promise<number> {
  const exe = basename(process.argv0 || 'cnitool');
  const p = parseCommandLine(args);
  if (typeof p === 'string') {
    process.stderr.write(`${p ? `${exe}: ${p}\n` : ''}${usage(exe)}\n`);
    return p ? 1 : 0;
  }
  const env = process.env;
  let list: NetworkConfigList | undefined;
  try {
    list = loadNetworkConf(env.NETCONFPATH || '/etc/cni/net.d', p.network);
    const netns = p.netns ? resolve(p.netns) : '';
    const rt: RuntimeConf = {
      containerID: netns ? containerIdFor(netns) : '',
      netns,
      ifname: p.ifname || env.CNI_IFNAME || 'eth0',
      // Unset (not empty) arguments are taken from the ADD's cache by CHECK and DEL.
      args: env.CNI_ARGS === undefined ? undefined : parseToolArgs(env.CNI_ARGS),
      capabilityArgs: parseCapArgs(env.CAP_ARGS),
    };
    const cni = new CniRuntime({ path: (env.CNI_PATH ?? '').split(':').filter(Boolean), cacheDir: env.CNI_CACHE_DIR });
    switch (p.command) {
      case 'add':
        process.stdout.write(JSON.stringify(await cni.addNetworkList(list, rt), null, 4) + '\n');
        break;
      case 'check':
        await cni.checkNetworkList(list, rt);
        break;
      case 'del':
        await cni.delNetworkList(list, rt);
        break;
      case 'gc':
        // Like upstream: no valid attachments, so every cached attachment of the network is deleted.
        await cni.gcNetworkList(list);
        break;
      case 'status':
        await cni.statusNetworkList(list);
        break;
    }
    return 0;
  } catch (e) {
    const err = asCniError(e);
    process.stdout.write(JSON.stringify(err.toJSON(list?.cniVersion ?? LATEST_VERSION), null, 4) + '\n');
    process.stderr.write(`${exe} ${p.command} ${p.network}: ${err.message}${err.details ? ` (${err.details})` : ''}\n`);
    return 1;
  }
}

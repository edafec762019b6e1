/**
 * Links in our own namespace: their state read from /sys/class/net without starting a process (only valid in
 * the namespace this process runs in: /sys does not follow nsenter), and the few single-step changes outside
 * the batched paths (undo, DEL, forceAddress).
 */
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { ExecError, ipBatch, run } from '../exec';
import { batchWord } from './batch';

const sys = (name: string, attr: string) => `/sys/class/net/${name}/${attr}`;

function read(name: string, attr: string): string | undefined {
  try {
    return readFileSync(sys(name, attr), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface LinkState {
  name: string;
  ifindex: number;
  /** Peer's ifindex for a veth (equals ifindex for links without a peer). */
  iflink: number;
  mac: string;
  isBridge: boolean;
  /** Name of the bridge this link is a port of. */
  master?: string;
  alias: string;
  promisc: boolean;
  up: boolean;
  mtu: number;
  /** 3 = the MAC was set explicitly (a bridge then keeps it when ports come and go). */
  addrAssignType: number;
}

const IFF_UP = 0x1;
const IFF_PROMISC = 0x100;

/** The link's state, or undefined when there is no such link. */
export function linkState(name: string): LinkState | undefined {
  const ifindex = read(name, 'ifindex');
  if (ifindex === undefined) return undefined;
  let master: string | undefined;
  try {
    master = basename(readlinkSync(sys(name, 'master')));
  } catch {
    master = undefined;
  }
  const flags = parseInt(read(name, 'flags') ?? '0', 16);
  return {
    name,
    ifindex: Number(ifindex),
    iflink: Number(read(name, 'iflink') ?? ifindex),
    mac: read(name, 'address') ?? '',
    // A bridge's type is in its uevent from the start; its `bridge` directory appears a moment after the link
    // (another ADD creating the bridge concurrently was seen as "not a bridge" in that moment).
    isBridge: /^DEVTYPE=bridge$/m.test(read(name, 'uevent') ?? '') || existsSync(sys(name, 'bridge')),
    ...(master ? { master } : {}),
    alias: read(name, 'ifalias') ?? '',
    promisc: (flags & IFF_PROMISC) !== 0,
    up: (flags & IFF_UP) !== 0,
    mtu: Number(read(name, 'mtu') ?? 0),
    addrAssignType: Number(read(name, 'addr_assign_type') ?? 0),
  };
}

export const linkExists = (name: string) => existsSync(sys(name, 'ifindex'));

/** Just the link's MAC and MTU (two reads), or undefined when there is no such link. */
export function linkMacMtu(name: string): { mac: string; mtu: number } | undefined {
  const mac = read(name, 'address');
  const mtu = read(name, 'mtu');
  return mac === undefined || mtu === undefined ? undefined : { mac, mtu: Number(mtu) };
}

/** The link's addresses with prefix length ("192.0.2.1/24"), from one `ip -o addr show`. */
export async function linkAddresses(name: string): Promise<string[]> {
  const r = await run('ip', ['-o', 'addr', 'show', 'dev', batchWord(name)]);
  return [...r.stdout.matchAll(/ inet6? (\S+)/g)].map((m) => m[1]!);
}

export async function deleteAddresses(name: string, cidrs: readonly string[]): Promise<void> {
  await ipBatch(cidrs.map((c) => `addr del ${c} dev ${batchWord(name)}`));
}

/**
 * Deletes a link in our namespace; a link that is already gone is fine (DEL and undo are idempotent). Done when
 * the link is gone from /sys: the kernel has then unlisted it (its name is free) and its peer, and removed its
 * routes; `ip` exits 15-20 ms later, after the kernel's wait for an RCU grace period and the last references,
 * which no later step needs, so it is left to finish on its own.
 */
export async function deleteLink(name: string): Promise<void> {
  const gone = () => (linkExists(name) ? undefined : { code: 0, stdout: '', stderr: '' });
  await ipBatch([`link del dev ${batchWord(name)}`], { doneWhen: gone, doneWhenPollMs: 1 }).catch((e: unknown) => {
    if (!(e instanceof ExecError && /Cannot find device|does not exist/.test(e.result?.stderr ?? e.message))) throw e;
  });
}

/**
 * The portmap plugin (chained after an interface plugin): publishes container ports on the host's addresses.
 * stdin/env -> config.ts (validate) -> plan.ts (pure) -> lib/firewall (one netfilter transaction),
 * localnet.ts and conntrack.ts -> prevResult passed through unchanged.
 */
import { configError, CniError, ErrorCode } from '../../lib/errors';
import type { HostportRequest } from '../../lib/firewall/driver';
import * as iptablesHostports from '../../lib/firewall/iptables/hostport';
import * as nftHostports from '../../lib/firewall/nftables/hostport';
import { firewall } from '../../lib/firewall/select';
import type { CmdArgs, Plugin } from '../../lib/skel';
import { validAttachments } from '../../lib/types/netconf';
import type { Result } from '../../lib/types/result';
import { parseConfig, type PortmapConfig } from './config';
import { flushUdp } from './conntrack';
import { enableRouteLocalnet } from './localnet';
import { hostportRequest, localnetTarget, udpFlushes } from './plan';

const warn = (msg: string) => process.stderr.write(`portmap: ${msg}\n`);

function request(a: CmdArgs): { conf: PortmapConfig; req: HostportRequest } {
  const conf = parseConfig(a.raw);
  return { conf, req: hostportRequest(conf, a.conf.name, a.containerID, a.ifname, a.prevResult) };
}

function needPrevResult(a: CmdArgs): Result {
  if (!a.prevResult) throw configError('prevResult: missing (portmap must be chained after a plugin that creates the interface)');
  return a.prevResult;
}

async function add(a: CmdArgs): Promise<Result> {
  const prev = needPrevResult(a);
  const { conf, req } = request(a);
  if (!req.mappings.length || !req.addresses.length) return prev;
  const local = localnetTarget(req);
  if (local) enableRouteLocalnet(local, prev);
  // All or nothing: a backend leaves no rule of a failed ADD behind.
  await firewall(conf.backend).addHostports(req);
  await flushUdp(udpFlushes(req), warn);
  return prev;
}

async function del(a: CmdArgs): Promise<void> {
  const { conf, req } = request(a);
  if (!req.mappings.length) return;
  await firewall(conf.backend).delHostports(req);
  await flushUdp(udpFlushes(req), warn);
}

async function check(a: CmdArgs): Promise<void> {
  needPrevResult(a);
  const { conf, req } = request(a);
  if (!req.mappings.length || !req.addresses.length) return;
  await firewall(conf.backend).checkHostports(req);
}

const availability = { iptables: iptablesHostports.hostportsAvailable, nftables: nftHostports.hostportsAvailable };

async function status(a: CmdArgs): Promise<void> {
  const asked = (a.raw as { backend?: unknown }).backend;
  const conf = parseConfig(a.raw);
  const candidates = asked ? [conf.backend] : (['iptables', 'nftables'] as const);
  for (const b of candidates) if (await availability[b]()) return;
  throw new CniError(ErrorCode.PluginNotAvailable, `portmap: no usable firewall backend (tried ${candidates.join(', ')})`);
}

async function gc(a: CmdArgs): Promise<void> {
  parseConfig(a.raw);
  // Without the list (a runtime that predates it) every attachment would look stale: collect nothing.
  if (!Array.isArray(a.raw['cni.dev/valid-attachments'])) return;
  const valid = validAttachments(a.raw).map((v) => ({ network: a.conf.name, ...v }));
  // Rules may be in either backend when a node switched; a backend that is not there has nothing to collect.
  for (const b of ['iptables', 'nftables'] as const) await firewall(b).gcHostports(a.conf.name, valid);
}

export const plugin: Plugin = { name: 'portmap', add, del, check, status, gc };

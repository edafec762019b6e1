/**
 * ADD: validate everything, then, all started at once: the host batch that makes the veth pair (the container end
 * created inside the netns; it also lists the bridge's addresses), the container's process, and IPAM. With IPAM's
 * result: the masquerade transaction, a second host batch for the gateway addresses when the bridge lacks one,
 * and the container's addresses and routes as soon as its interface exists. Any failure undoes this ADD's veth
 * and rules (withIpamAdd releases the reservation); a bridge we created stays, as others may share it.
 */
import { configError, envError, CniError, ErrorCode } from '../../lib/errors';
import { ExecError, run } from '../../lib/exec';
import type { PreparedMasquerade } from '../../lib/firewall/driver';
import { firewall, onPath } from '../../lib/firewall/select';
import { findInPath, withIpamAdd } from '../../lib/invoke';
import { batchWord, startTolerantBatch, type BatchDone, type BatchLine } from '../../lib/net/batch';
import { deleteAddresses, deleteLink, linkAddresses, linkExists, linkMacMtu, linkState, type LinkState } from '../../lib/net/link';
import { randomMac } from '../../lib/net/mac';
import { attachmentAlias, hostVethName, VETH_NAME_ATTEMPTS } from '../../lib/net/names';
import { netnsExists, startInNetns, type NetnsSession } from '../../lib/net/netns';
import { setupSpoofCheck, teardownSpoofCheck } from '../../lib/net/spoofcheck';
import { ensureSysctl, setSysctl } from '../../lib/net/sysctl';
import type { CmdArgs } from '../../lib/skel';
import type { Result } from '../../lib/types/result';
import { loadConf, type BridgeConf } from './config';
import { conflictingAddresses, hasAddresses, planAdd, planHostAttach, type AddPlan } from './plan';

/**
 * Checks that need no side effect: the netns, names ip -batch can carry, tools the config needs. Returns the
 * bridge's state as read for the checks (ADD plans with it).
 */
function preflight(conf: BridgeConf, a: CmdArgs): LinkState | undefined {
  if (!netnsExists(a.netns)) throw envError(`CNI_NETNS "${a.netns}" does not exist`);
  for (const [what, v] of [['CNI_NETNS', a.netns], ['CNI_IFNAME', a.ifname]] as const) {
    try {
      batchWord(v);
    } catch {
      throw envError(`${what} "${v}" holds characters this plugin cannot pass to ip (# or both quote kinds)`);
    }
  }
  const br = linkState(conf.bridge);
  if (br && !br.isBridge) throw configError(`bridge: "${conf.bridge}" already exists and is not a bridge`);
  if (conf.ipamType) findInPath(conf.ipamType, a.path, 'ipam.type');
  const needs: Array<[boolean, string, string]> = [
    [conf.ipMasq && !!conf.ipamType && firewall(conf.ipMasqBackend).name === 'iptables', 'iptables-restore', 'ipMasq with the iptables backend'],
    [conf.ipMasq && !!conf.ipamType && firewall(conf.ipMasqBackend).name === 'nftables', 'nft', 'ipMasq with the nftables backend'],
    [conf.macSpoofChk, 'nft', 'macspoofchk'],
    [conf.vlan > 0 || conf.vlanTrunk.length > 0, 'bridge', 'vlan/vlanTrunk'],
  ];
  for (const [needed, cmd, what] of needs) if (needed && !onPath(cmd)) throw configError(`${what}: needs ${cmd}, which is not on PATH`);
  return br;
}

/** A free host veth name for this attachment; an existing one with our alias means the attachment exists. */
function pickHostVeth(a: CmdArgs, alias: string): string {
  for (let attempt = 0; attempt < VETH_NAME_ATTEMPTS; attempt++) {
    const name = hostVethName(a.containerID, a.ifname, attempt);
    const st = linkState(name);
    if (!st) return name;
    if (st.alias === alias) throw envError(`CNI_CONTAINERID "${a.containerID}" CNI_IFNAME "${a.ifname}": already attached (host veth ${name} exists); DEL it first`);
  }
  throw new CniError(ErrorCode.Internal, `no free host veth name for ${a.containerID}/${a.ifname} after ${VETH_NAME_ATTEMPTS} attempts`);
}

/** forceAddress semantics, checked only when this ADD put a gateway on the bridge (rare: not on the hot path). */
async function settleGatewayConflicts(conf: BridgeConf, plan: AddPlan, existed: Set<number>): Promise<void> {
  const added = [...plan.gatewayLines].filter(([i]) => !existed.has(i)).map(([, gw]) => gw);
  if (!added.length) return;
  const dev = conf.vlanGateway ?? conf.bridge;
  const conflicts = conflictingAddresses(await linkAddresses(dev), plan.gateways);
  if (!conflicts.length) return;
  if (!conf.forceAddress) {
    await deleteAddresses(dev, added).catch(() => undefined);
    throw configError(`${conf.vlanGateway ? 'VLAN gateway' : 'bridge'} "${dev}" already has address ${conflicts.join(', ')}, different from gateway ${plan.gateways.join(', ')} (set forceAddress to replace it)`);
  }
  await deleteAddresses(dev, conflicts);
}

function explainBatchError(e: unknown, a: CmdArgs, hostVeth: string): unknown {
  if (e instanceof ExecError && /File exists/.test(e.result?.stderr ?? '') && e.message.includes(`link add name ${hostVeth}`)) {
    return envError(`CNI_IFNAME "${a.ifname}" already exists in netns ${a.netns}`);
  }
  return e;
}

export async function add(a: CmdArgs): Promise<Result> {
  const conf = loadConf(a.raw, a.args, true);
  const br = preflight(conf, a);
  const alias = attachmentAlias(a.containerID, a.ifname);
  const hostVeth = pickHostVeth(a, alias);
  const fw = conf.ipMasq && conf.ipamType ? firewall(conf.ipMasqBackend) : undefined;
  const vlanGw = conf.vlanGateway ? linkState(conf.vlanGateway) : undefined;
  const base = {
    conf,
    containerID: a.containerID,
    ifname: a.ifname,
    netns: a.netns,
    hostVeth,
    alias,
    ...(br ? { bridge: { mac: br.mac, macPinned: br.addrAssignType === 3 } } : {}),
    ...(vlanGw ? { vlanGateway: { mac: vlanGw.mac } } : {}),
    macs: { bridge: randomMac(), host: randomMac(), container: conf.mac ?? randomMac(), vlanGateway: randomMac() },
  };

  // The veth pair is made now, while IPAM works, in a batch of its own, so that the container's configuration can
  // follow as soon as it is done; the container's process starts now too. The lines that need IPAM's result
  // (gateways) are a second batch. A bridge that does not exist yet waits for IPAM: a bad IPAM config must not
  // leave one.
  const attachLines = br ? planHostAttach(base) : [];
  // An existing bridge nearly always has its gateway addresses already: the veth batch lists them, and the
  // gateway batch (a process of its own) runs only when one is missing.
  const listGateways = !!br && conf.isGateway && !conf.vlanGateway && !!conf.ipamType;
  const listLine: BatchLine = { line: `addr show dev ${batchWord(conf.bridge)}`, optional: true };
  const batches: Array<Promise<unknown>> = [];
  const hostBatch = (lines: readonly BatchLine[]): Promise<BatchDone> => {
    const b = startTolerantBatch();
    b.add(lines);
    const done = b.done().catch((e: unknown) => {
      throw explainBatchError(e, a, hostVeth);
    });
    batches.push(done.catch(() => undefined));
    return done;
  };
  const attached = attachLines.length ? hostBatch(listGateways ? [...attachLines, listLine] : attachLines) : undefined;
  let attachedDone = false;
  void attached?.then(() => (attachedDone = true), () => undefined);
  // Started after IPAM's lock helper (below): the container's process is needed only once the veth and the
  // addresses are there.
  let inContainer: NetnsSession | undefined;
  const startContainer = () => (inContainer = conf.ipamType || !conf.disableContainerInterface ? startInNetns(a.netns) : undefined);
  const undo: Array<() => Promise<unknown>> = [
    async () => {
      if (linkExists(hostVeth)) await deleteLink(hostVeth);
    },
  ];

  // The masquerade's process, started while IPAM works (below).
  let prepared: PreparedMasquerade | undefined;

  // Set when this ADD fails before IPAM has answered: attach then refuses, so IPAM's reservation is released.
  let failing = false;
  const attach = async (ipam?: Result): Promise<Result> => {
    if (failing) throw new CniError(ErrorCode.Internal, 'bridge ADD failed while IPAM worked');
    if (ipam && !ipam.ips?.length) throw new CniError(ErrorCode.Internal, `ipam.type ${conf.ipamType}: returned no IP addresses`);
    const plan = planAdd({ ...base, ...(ipam ? { ipam } : {}) });
    const rest = plan.hostBatch.slice(attachLines.length);
    // Indices of `okIfExists` lines that found their object, in plan.hostBatch.
    const runRest = () => hostBatch(rest).then(({ existed }) => new Set([...existed].map((i) => i + attachLines.length)));
    const onlyGateways = rest.every((_, k) => plan.gatewayLines.has(k + attachLines.length));
    const restDone: Promise<Set<number>> = !rest.length
      ? Promise.resolve(new Set<number>())
      : attached && listGateways && onlyGateways
        ? attached.then(({ stdout }) => (hasAddresses(stdout, [...plan.gatewayLines.values()]) ? new Set(plan.gatewayLines.keys()) : runRest()))
        : runRest();
    const vethReady: Promise<unknown> = attached ?? restDone;
    const masq = { network: conf.network, containerID: a.containerID, ifname: a.ifname, addresses: plan.masquerade };
    if (fw && plan.masquerade.length) undo.push(() => fw.delMasquerade(masq));
    if (conf.macSpoofChk) undo.push(() => teardownSpoofCheck(a.containerID, a.ifname));

    const steps: Array<Promise<unknown>> = [];
    // The container's addresses and routes need its interface; its default route needs no gateway address yet.
    steps.push(
      vethReady.then(async () => {
        for (const [k, v] of plan.hostBestEffortSysctls) {
          try {
            setSysctl(k, v);
          } catch {
            // no IPv6 on this host: nothing to keep from routing
          }
        }
        if (inContainer) await inContainer.run(plan.container);
      }),
    );
    steps.push(
      restDone.then(async (existed) => {
        await settleGatewayConflicts(conf, plan, existed);
        for (const [k, v] of plan.hostSysctls) ensureSysctl(k, v);
        // A VLAN gateway port is configured by the ADD that created it.
        const vlanLines = [...plan.vlanBatch, ...(plan.vlanGatewayCreate && !existed.has(plan.vlanGatewayCreate.line) ? plan.vlanGatewayCreate.vlanBatch : [])];
        await vethReady;
        if (vlanLines.length) await run('bridge', ['-batch', '-'], { input: vlanLines.join('\n') + '\n' });
      }),
    );
    // The rules need only the addresses. Spawning their process holds this thread for 1-2 ms (fork and exec of
    // a large process), so when the veth is already there the container's work, the longer path, is sent first.
    if (fw && plan.masquerade.length) {
      const addMasq = () => (prepared ? prepared.add(masq) : fw.addMasquerade(masq));
      steps.push(attachedDone ? vethReady.then(addMasq) : addMasq());
    } else if (prepared) steps.push(prepared.cancel());
    if (conf.macSpoofChk) steps.push(vethReady.then(() => setupSpoofCheck(hostVeth, plan.result.interfaces![2]!.mac!, a.containerID, a.ifname)));
    const settled = await Promise.allSettled(steps);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    // MACs and MTUs as the kernel has them: the bridge's MAC is its own when we created it, an older bridge may
    // have changed it while ports came, and a concurrent ADD may have made the VLAN gateway, with its own MAC.
    for (const i of plan.result.interfaces!) {
      const st = linkMacMtu(i.sandbox ? hostVeth : i.name);
      if (!st) continue;
      if (!i.sandbox && i.name !== hostVeth) i.mac = st.mac;
      i.mtu = st.mtu;
    }
    return plan.result;
  };

  let added: Promise<Result> | undefined;
  try {
    if (!conf.ipamType) {
      startContainer();
      return await attach();
    }
    // IPAM's lock helper is spawned before the container's process: IPAM's result gates the container's
    // addresses and the rules, while the container's process only has to be up by then (each spawn holds this
    // thread 1.5-3 ms). host-local in-process runs synchronously up to that spawn; attach runs after IPAM's
    // result, when the processes below exist.
    added = withIpamAdd(conf.ipamType, a.version, { stdin: a.stdin, env: a.env, path: a.path, field: 'ipam.type' }, attach);
    startContainer();
    // Started while IPAM works, so the rules' process is up when the addresses come; attach finds it.
    prepared = fw?.prepareMasquerade?.();
    return await added;
  } catch (e) {
    // A step after IPAM's start failed (a spawn that throws at once): IPAM ends before the undo, without a
    // reservation (attach refuses, withIpamAdd releases).
    failing = true;
    await added?.catch(() => undefined);
    // Let the host batches finish what they were sent (so nothing is half made), stop the container process, undo.
    await Promise.all(batches);
    await inContainer?.abort();
    await prepared?.cancel();
    for (const u of undo) await u().catch((err: Error) => process.stderr.write(`bridge: undo after failed ADD: ${err.message}\n`));
    throw e;
  }
}

/**
 * The host-local IPAM plugin: addresses from configured ranges, reserved as files in a directory shared with
 * the Go plugin. Request path: config.ts (validate everything) -> plan.ts (pure choices) -> allocate.ts under
 * the store's lock (store.ts, the on-disk format) -> result.
 */
import { existsSync } from 'node:fs';
import { CniError, ErrorCode } from '../../lib/errors';
import { rehearsal } from '../../lib/rehearsal';
import { formatIp, parseCidr, type Addr } from '../../lib/ip';
import type { CmdArgs, Plugin } from '../../lib/skel';
import { validAttachments } from '../../lib/types/netconf';
import type { Result } from '../../lib/types/result';
import { allocate, heldBy, release } from './allocate';
import { currentBoot } from './boot';
import { loadConfig, loadStoreConfig, requestedIps } from './config';
import { readResolvConf } from './dns';
import { OwnerJournal } from './journal';
import { assignRequested, countReserved, ownerKey } from './plan';
import { canonical, capacity, rangeFor, rangeSetText } from './range';
import { addrOfName, Store } from './store';

// A rehearsal's GC of its own temporary reservations is not news for whoever builds the snapshot.
const log = (text: string) => rehearsal.on || process.stderr.write(`host-local: ${text}\n`);

async function add(a: CmdArgs): Promise<Result> {
  const cfg = loadConfig(a.raw, a.conf.name, a.version);
  const requested = assignRequested(cfg.sets, requestedIps(a.raw, a.args));
  const dns = cfg.resolvConf ? readResolvConf(cfg.resolvConf) : undefined;
  const boot = cfg.reclaimAfterReboot ? currentBoot() : undefined;
  const store = Store.for(cfg.dataDir, cfg.network);
  store.ensureDir();
  const ips = await store.locked(() => {
    if (boot) {
      const removed = store.reclaimAfterReboot(boot.id, boot.startedMs);
      if (removed.length) {
        new OwnerJournal(store).drop();
        log(`released ${removed.length} reservation(s) from before the reboot: ${removed.join(', ')}`);
      }
    }
    return allocate(store, cfg, requested, a);
  });
  return { ips, ...(cfg.routes.length ? { routes: cfg.routes } : {}), ...(dns ? { dns } : {}) };
}

async function del(a: CmdArgs): Promise<void> {
  const { dataDir, network } = loadStoreConfig(a.raw, a.conf.name);
  const store = Store.for(dataDir, network);
  // Nothing was ever reserved here: succeed without creating anything.
  if (!existsSync(store.dir)) return;
  await store.locked(() => release(store, a));
}

async function check(a: CmdArgs): Promise<void> {
  const cfg = loadConfig(a.raw, a.conf.name, a.version);
  const store = Store.for(cfg.dataDir, cfg.network);
  const mine = existsSync(store.dir) ? await store.locked(() => heldBy(store, a)) : [];
  if (!mine.length) {
    throw new CniError(ErrorCode.UnknownContainer, `no address reserved for container ${a.containerID} interface ${a.ifname} in ${store.dir}`);
  }
  // Addresses the runtime believes we gave (prevResult) must still be reserved for this attachment.
  for (const ip of a.prevResult?.ips ?? []) {
    const addr = canonical(parseCidr(ip.address)!.addr);
    const name = formatIp(addr);
    if (!cfg.sets.some((s) => rangeFor(s, addr)) || mine.includes(name)) continue;
    const holder = store.owner(name)?.replace('\r\n', ' interface ');
    throw new CniError(
      ErrorCode.Internal,
      `prevResult address ${ip.address} is ${holder ? `reserved by ${holder}` : 'not reserved'}, not by container ${a.containerID} interface ${a.ifname}`,
    );
  }
}

async function status(a: CmdArgs): Promise<void> {
  const cfg = loadConfig(a.raw, a.conf.name, a.version);
  const store = Store.for(cfg.dataDir, cfg.network);
  const reserved = store.names().map(addrOfName).filter((x): x is Addr => !!x);
  cfg.sets.forEach((set, idx) => {
    const total = capacity(set);
    if (countReserved(set, reserved) >= total) {
      throw new CniError(
        ErrorCode.PluginNotAvailable,
        `range set ${idx} (${rangeSetText(set)}) of network ${cfg.network} has no free address: all ${total} are reserved in ${store.dir}`,
      );
    }
  });
}

async function gc(a: CmdArgs): Promise<void> {
  const { dataDir, network } = loadStoreConfig(a.raw, a.conf.name);
  const store = Store.for(dataDir, network);
  if (!existsSync(store.dir)) return;
  if (!Array.isArray(a.raw['cni.dev/valid-attachments'])) {
    // Without the runtime's list every reservation would look stale; releasing them all is never what was meant.
    log('GC without cni.dev/valid-attachments: nothing released');
    return;
  }
  const valid = validAttachments(a.raw);
  const keys = new Set(valid.map((v) => ownerKey(v.containerID, v.ifname)));
  const ids = new Set(valid.map((v) => v.containerID.trim()));
  const removed = await store.locked(() => {
    const gone = [...store.reservations()]
      .filter(([, owner]) => !keys.has(owner) && !ids.has(owner))
      .filter(([name]) => store.remove(name))
      .map(([name, owner]) => `${name} (${owner.replace('\r\n', '/')})`);
    if (gone.length) new OwnerJournal(store).drop();
    return gone;
  });
  if (removed.length) log(`GC released ${removed.length} reservation(s) in ${store.dir}: ${removed.join(', ')}`);
}

export const plugin: Plugin = { name: 'host-local', add, del, check, status, gc };

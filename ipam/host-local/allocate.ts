/**
 * Applying the plan to the store, under its lock: one readdir, one read of each reservation's owner, then
 * exclusive creates until each range set has its address. Whatever this ADD claimed is released if a later
 * set fails, so a failed ADD leaves the directory as it found it.
 */
import { CniError, ErrorCode, internalError } from '../../lib/errors';
import { formatIp, type Addr } from '../../lib/ip';
import type { IPConfig } from '../../lib/types/result';
import type { IpamConfig } from './config';
import { duplicateError, freeCandidates, heldInSet, ownerKey, type Requested } from './plan';
import { rangeFor, rangeSetText, type Range } from './range';
import type { Reservation, Store } from './store';

export interface Attachment {
  containerID: string;
  ifname: string;
}

function claimRequested(store: Store, idx: number, req: Requested, cfg: IpamConfig, owner: string): { name: string; range: Range } {
  const name = formatIp(req.addr);
  if (!store.reserve(name, owner)) {
    const holder = store.owner(name)?.replace('\r\n', ' interface ') ?? 'another attachment';
    throw internalError(`${req.from}: requested address ${name} is not available in range set ${idx} (${rangeSetText(cfg.sets[idx]!)}): reserved by ${holder}`);
  }
  return { name, range: rangeFor(cfg.sets[idx]!, req.addr)! };
}

function claimNext(store: Store, idx: number, cfg: IpamConfig, taken: ReadonlySet<string>, owner: string): { name: string; range: Range } {
  const last: Addr | undefined = store.lastReserved(idx);
  for (const c of freeCandidates(cfg.sets[idx]!, last, taken)) {
    // A free name can still be taken by a writer that ignores the lock; the exclusive create decides.
    if (store.reserve(c.name, owner)) return c;
  }
  throw new CniError(
    ErrorCode.TryAgainLater,
    `no IP addresses available in range set ${idx} (${rangeSetText(cfg.sets[idx]!)}) of network ${cfg.network}: every address is reserved in ${store.dir}`,
  );
}

/** Reserves one address per range set for the attachment; call with the store locked. */
export function allocate(store: Store, cfg: IpamConfig, requested: Map<number, Requested>, who: Attachment): IPConfig[] {
  const names = store.names();
  const owners: Map<string, Reservation> = store.reservations(names);
  cfg.sets.forEach((set, idx) => {
    const held = heldInSet(set, owners, who.containerID, who.ifname);
    if (held.length) throw duplicateError(idx, held, who.containerID, who.ifname);
  });
  const taken = new Set(names);
  const owner = ownerKey(who.containerID, who.ifname);
  const claimed: string[] = [];
  try {
    return cfg.sets.map((_, idx) => {
      const req = requested.get(idx);
      const { name, range } = req ? claimRequested(store, idx, req, cfg, owner) : claimNext(store, idx, cfg, taken, owner);
      claimed.push(name);
      store.setLastReserved(idx, name);
      return { address: `${name}/${range.subnet.prefix}`, gateway: formatIp(range.gateway) };
    });
  } catch (e) {
    for (const name of claimed) store.remove(name);
    throw e;
  }
}

/** Releases the attachment's reservations (legacy ID-only files when it has no new-style ones, as Go does). */
export function release(store: Store, who: Attachment): string[] {
  const owners = store.reservations();
  const key = ownerKey(who.containerID, who.ifname);
  let mine = [...owners].filter(([, r]) => r.owner === key);
  if (!mine.length) mine = [...owners].filter(([, r]) => r.owner === who.containerID.trim());
  return mine.filter(([name]) => store.remove(name)).map(([name]) => name);
}

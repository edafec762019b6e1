/**
 * Applying the plan to the store, under its lock: one readdir, the owners (from the journal when the directory
 * is large), then exclusive creates until each range set has its address. Whatever this ADD claimed is released
 * if a later set fails, so a failed ADD leaves the directory as it found it. Every owner we act on (a duplicate,
 * a file to release) is read back from its file first.
 */
import { CniError, ErrorCode, internalError } from '../../lib/errors';
import { formatIp, type Addr } from '../../lib/ip';
import type { IPConfig } from '../../lib/types/result';
import type { IpamConfig } from './config';
import { OwnerJournal } from './journal';
import { duplicateError, freeCandidates, namesInSet, ownerKey, type Requested } from './plan';
import { rangeFor, rangeSetText, type Range } from './range';
import type { Store } from './store';

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
  const journal = new OwnerJournal(store);
  journal.load(names);
  const owner = ownerKey(who.containerID, who.ifname);
  const claimed: string[] = [];
  const lastWritten: string[] = [];
  try {
    // Legacy ID-only files count too, as in Go.
    const mine = [...journal.ownedBy(owner), ...journal.ownedBy(who.containerID.trim())];
    cfg.sets.forEach((set, idx) => {
      const held = namesInSet(set, mine);
      if (held.length) throw duplicateError(idx, held, who.containerID, who.ifname);
    });
    const taken = new Set(names);
    try {
      return cfg.sets.map((_, idx) => {
        const req = requested.get(idx);
        const { name, range } = req ? claimRequested(store, idx, req, cfg, owner) : claimNext(store, idx, cfg, taken, owner);
        claimed.push(name);
        lastWritten.push(store.setLastReserved(idx, name));
        return { address: `${name}/${range.subnet.prefix}`, gateway: formatIp(range.gateway) };
      });
    } catch (e) {
      for (const name of claimed.splice(0)) store.remove(name);
      throw e;
    }
  } finally {
    journal.commit(
      claimed.map((n) => [n, owner]),
      [],
      lastWritten,
    );
  }
}

/** The attachment's reservations: new-style files, else legacy ID-only ones (as Go releases them). */
function attachmentFiles(journal: OwnerJournal, store: Store, who: Attachment): string[] {
  journal.load(store.names());
  const mine = journal.ownedBy(ownerKey(who.containerID, who.ifname));
  return mine.length ? mine : journal.ownedBy(who.containerID.trim());
}

/** Releases the attachment's reservations; call with the store locked. */
export function release(store: Store, who: Attachment): string[] {
  const journal = new OwnerJournal(store);
  const removed = attachmentFiles(journal, store, who).filter((n) => store.remove(n));
  journal.commit([], removed);
  return removed;
}

/** The attachment's reserved addresses (for CHECK); call with the store locked. */
export function heldBy(store: Store, who: Attachment): string[] {
  const journal = new OwnerJournal(store);
  const mine = attachmentFiles(journal, store, who);
  journal.commit([], []);
  return mine;
}

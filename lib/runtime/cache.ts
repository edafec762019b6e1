/**
 * The result cache, in libcni's layout and format so runtimes and tools can share a node:
 * `<cacheDir>/results/<network>-<containerID>-<ifname>` holding
 * {kind:"cniCacheV1", containerId, config (base64 of the list's bytes), ifName, networkName, netns, cniArgs,
 * capabilityArgs, result}. ADD writes it; CHECK and DEL read the result back as prevResult; GC walks it to
 * find attachments the runtime no longer knows.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configError, ioError } from '../errors';
import { convertResult } from '../types/result';
import type { RuntimeConf } from './request';

export const DEFAULT_CACHE_DIR = '/var/lib/cni';
export const CACHE_KIND = 'cniCacheV1';

/** One cache file, field for field as libcni writes it. */
export interface CacheEntry {
  kind: typeof CACHE_KIND;
  containerId: string;
  /** base64 of the network config list's bytes. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

/** An attachment found in the cache. */
export interface CachedAttachment {
  containerID: string;
  network: string;
  ifname: string;
  netns: string;
  config: Buffer;
  args?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
}

export function cacheFile(cacheDir: string, network: string, rt: Pick<RuntimeConf, 'containerID' | 'ifname'>): string {
  if (!network || !rt.containerID || !rt.ifname) {
    throw configError(`the result cache needs a network name ("${network}"), container ID ("${rt.containerID}") and interface name ("${rt.ifname}")`);
  }
  return join(cacheDir, 'results', `${network}-${rt.containerID}-${rt.ifname}`);
}

export function cacheEntry(network: string, config: Buffer, rt: RuntimeConf, result: Record<string, unknown> | undefined): CacheEntry {
  const e: CacheEntry = { kind: CACHE_KIND, containerId: rt.containerID, config: config.toString('base64'), ifName: rt.ifname, networkName: network };
  // Go's omitempty: absent rather than empty.
  if (rt.netns) e.netns = rt.netns;
  if (rt.args?.length) e.cniArgs = rt.args;
  if (rt.capabilityArgs && Object.keys(rt.capabilityArgs).length) e.capabilityArgs = rt.capabilityArgs;
  if (result) e.result = result;
  return e;
}

/** Writes the entry atomically (a reader never sees half a file), 0600 in a 0700 directory as libcni does. */
export function writeCache(cacheDir: string, entry: CacheEntry): void {
  const file = cacheFile(cacheDir, entry.networkName, { containerID: entry.containerId, ifname: entry.ifName });
  const tmp = `${file}.tmp${process.pid}`;
  try {
    mkdirSync(join(cacheDir, 'results'), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    renameSync(tmp, file);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The directory itself is unusable; there is no temp file to remove.
    }
    throw ioError(`cannot write the cached result of network "${entry.networkName}" to ${file}: ${(e as Error).message}`);
  }
}

export function removeCache(cacheDir: string, network: string, rt: Pick<RuntimeConf, 'containerID' | 'ifname'>): void {
  try {
    rmSync(cacheFile(cacheDir, network, rt), { force: true });
  } catch {
    // Nothing to remove (no name to build the path from).
  }
}

/** What ADD left for an attachment: its result (in the version asked for) and the runtime arguments it was made with. */
export interface Cached {
  result?: Record<string, unknown>;
  args?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
}

/**
 * The cache entry of an attachment with its result converted to `version` (prevResult must be in the version
 * of the config), or undefined when nothing is cached. Throws when the file cannot be understood.
 */
export function readCached(cacheDir: string, network: string, rt: Pick<RuntimeConf, 'containerID' | 'ifname'>, version: string): Cached | undefined {
  const file = cacheFile(cacheDir, network, rt);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw configError(`cached result ${file} is not JSON: ${(e as Error).message}`);
  }
  // Files from before cniCacheV1 hold just the result.
  const entry = raw as Partial<CacheEntry>;
  const v1 = entry?.kind === CACHE_KIND;
  const result = v1 ? entry.result : (raw as Record<string, unknown>);
  const out: Cached = {};
  if (v1 && entry.cniArgs) out.args = entry.cniArgs;
  if (v1 && entry.capabilityArgs) out.capabilityArgs = entry.capabilityArgs;
  if (result) {
    const own = typeof result.cniVersion === 'string' && result.cniVersion ? result.cniVersion : version;
    out.result = convertResult(result, own, version);
  }
  return out;
}

export const readCachedResult = (cacheDir: string, network: string, rt: Pick<RuntimeConf, 'containerID' | 'ifname'>, version: string) =>
  readCached(cacheDir, network, rt, version)?.result;

/** Every attachment in the cache (of one container when `containerID` is given), in file-name order. */
export function cachedAttachments(cacheDir: string, containerID?: string): CachedAttachment[] {
  const dir = join(cacheDir, 'results');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out: CachedAttachment[] = [];
  for (const name of names) {
    if (containerID && !name.includes(`-${containerID}-`)) continue;
    let e: Partial<CacheEntry>;
    try {
      e = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<CacheEntry>;
    } catch {
      continue;
    }
    if (e?.kind !== CACHE_KIND || !e.ifName || !e.networkName || typeof e.containerId !== 'string') continue;
    if (containerID && e.containerId !== containerID) continue;
    out.push({
      containerID: e.containerId,
      network: e.networkName,
      ifname: e.ifName,
      netns: e.netns ?? '',
      config: Buffer.from(e.config ?? '', 'base64'),
      ...(e.cniArgs ? { args: e.cniArgs } : {}),
      ...(e.capabilityArgs ? { capabilityArgs: e.capabilityArgs } : {}),
    });
  }
  return out;
}

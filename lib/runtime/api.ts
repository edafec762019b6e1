/**
 * The runtime side of CNI (what libcni's CNIConfig does): runs a network config list's plugins in order for
 * ADD (each gets the previous result), in reverse for DEL, with the cached ADD result for CHECK and DEL;
 * GC deletes cached attachments the runtime no longer lists and then sends GC; STATUS asks every plugin.
 * Beyond libcni: every plugin is located before the first one runs, and a failed ADD is undone (DEL of the
 * plugins that ran) so a failed attachment leaves nothing behind.
 */
import { asCniError, CniError, envError, internalError, versionError } from '../errors';
import { findInPath } from '../invoke';
import { validateIfname, type Command } from '../skel';
import { NAME_PATTERN, type Attachment } from '../types/netconf';
import { convertResult } from '../types/result';
import { versionAtLeast } from '../version';
import { cachedAttachments, cacheEntry, DEFAULT_CACHE_DIR, readCached, removeCache, writeCache, type CachedAttachment } from './cache';
import type { NetworkConfigList } from './conf';
import { callPlugin, describePlugin } from './exec';
import { pluginConfig, pluginEnv, type RuntimeConf } from './request';

export interface RuntimeOptions {
  /** Directories searched for plugins (CNI_PATH). */
  path: readonly string[];
  /** Default /var/lib/cni; results live in <cacheDir>/results. */
  cacheDir?: string;
  /** The environment plugins inherit (CNI_* are set per call). Default: this process's. */
  env?: Record<string, string | undefined>;
}

type Result = Record<string, unknown>;

function validateAttachment(network: string, rt: RuntimeConf): void {
  const problems: string[] = [];
  if (!NAME_PATTERN.test(rt.containerID)) problems.push(`container ID "${rt.containerID}" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$`);
  if (!NAME_PATTERN.test(network)) problems.push(`network name "${network}" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$`);
  const bad = validateIfname(rt.ifname);
  if (bad) problems.push(`interface name "${rt.ifname}" ${bad}`);
  if (problems.length) throw envError(problems.join('; '));
}

/** A plugin's result in the list's version; a result without cniVersion is taken to be in it (libcni does the same). */
function inVersion(raw: unknown, version: string, who: string): Result {
  if (raw === undefined) throw internalError(`${who} returned no result for ADD`);
  const own = (raw as { cniVersion?: unknown }).cniVersion;
  if (typeof own === 'string' && own === version) return raw as Result;
  return convertResult(raw, typeof own === 'string' && own ? own : version, version);
}

export class CniRuntime {
  readonly path: readonly string[];
  readonly cacheDir: string;
  private readonly env: Record<string, string | undefined>;

  constructor(o: RuntimeOptions) {
    this.path = o.path;
    this.cacheDir = o.cacheDir || DEFAULT_CACHE_DIR;
    this.env = o.env ?? process.env;
  }

  private call(list: NetworkConfigList, index: number, command: Command, rt: RuntimeConf | undefined, stdin: Buffer): Promise<unknown> {
    const plugin = list.plugins[index]!;
    return callPlugin({ plugin, index, command, stdin, path: this.path, env: pluginEnv(command, rt, this.path, this.env) });
  }

  /** Fails (code 7, naming the plugin) when any plugin of the list is missing, before anything runs. */
  private locateAll(list: NetworkConfigList): void {
    list.plugins.forEach((p, i) => findInPath(p.type, this.path, `plugins[${i}].type`));
  }

  async addNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<Result> {
    validateAttachment(list.name, rt);
    this.locateAll(list);
    let result: Result | undefined;
    for (let i = 0; i < list.plugins.length; i++) {
      const stdin = pluginConfig(list, list.plugins[i]!, { prevResult: result, rt });
      try {
        result = inVersion(await this.call(list, i, 'ADD', rt, stdin), list.cniVersion, describePlugin({ plugin: list.plugins[i]!, index: i }));
      } catch (e) {
        await this.undoAdd(list, rt, i, result);
        throw e;
      }
    }
    try {
      writeCache(this.cacheDir, cacheEntry(list.name, list.bytes, rt, result));
    } catch (e) {
      // Without its cache entry the attachment could not be checked or cleanly deleted later: take it down now.
      await this.undoAdd(list, rt, list.plugins.length - 1, result);
      throw e;
    }
    return result!;
  }

  /** DEL for the plugins that ran (the failing one included: it may have done part of its work), newest first. */
  private async undoAdd(list: NetworkConfigList, rt: RuntimeConf, failed: number, prevResult: Result | undefined): Promise<void> {
    for (let i = failed; i >= 0; i--) {
      try {
        await this.call(list, i, 'DEL', rt, pluginConfig(list, list.plugins[i]!, { prevResult, rt }));
      } catch (e) {
        process.stderr.write(`cleanup after the failed ADD: ${(e as Error).message}\n`);
      }
    }
  }

  /**
   * The cached result and the runtime arguments for CHECK/DEL. Beyond libcni: arguments the caller left out
   * (undefined, not empty) come from the cache, so `cnitool del` without CAP_ARGS still removes the port mappings
   * ADD made.
   */
  private fromCache(list: NetworkConfigList, rt: RuntimeConf): { prevResult?: Result; rt: RuntimeConf } {
    const c = readCached(this.cacheDir, list.name, rt, list.cniVersion);
    return { prevResult: c?.result, rt: { ...rt, args: rt.args ?? c?.args, capabilityArgs: rt.capabilityArgs ?? c?.capabilityArgs } };
  }

  async checkNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    if (!versionAtLeast(list.cniVersion, '0.4.0')) throw versionError(`configuration version "${list.cniVersion}" does not support the CHECK command (it needs 0.4.0 or later)`);
    if (list.disableCheck) return;
    const c = this.fromCache(list, rt);
    for (let i = 0; i < list.plugins.length; i++) {
      await this.call(list, i, 'CHECK', c.rt, pluginConfig(list, list.plugins[i]!, { prevResult: c.prevResult, rt: c.rt }));
    }
  }

  async delNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    let c: { prevResult?: Result; rt: RuntimeConf } = { rt };
    // Before 0.4.0 DEL carried no prevResult.
    if (versionAtLeast(list.cniVersion, '0.4.0')) {
      try {
        c = this.fromCache(list, rt);
      } catch (e) {
        // An unreadable cache must not block DEL: drop it and let the plugins clean up from their own records.
        process.stderr.write(`ignoring the cached result: ${(e as Error).message}\n`);
        removeCache(this.cacheDir, list.name, rt);
      }
    }
    for (let i = list.plugins.length - 1; i >= 0; i--) {
      await this.call(list, i, 'DEL', c.rt, pluginConfig(list, list.plugins[i]!, { prevResult: c.prevResult, rt: c.rt }));
    }
    removeCache(this.cacheDir, list.name, rt);
  }

  /** Attachments in the cache (of one container when given). */
  cachedAttachments(containerID?: string): CachedAttachment[] {
    return cachedAttachments(this.cacheDir, containerID);
  }

  /**
   * DELs every cached attachment of this network that is not in `valid` (all of them when `valid` is undefined,
   * as libcni does), then sends GC (1.1.0+) with `cni.dev/valid-attachments` (always; empty when undefined). Every failure is reported; the
   * first one's code is kept.
   */
  async gcNetworkList(list: NetworkConfigList, valid?: readonly Attachment[]): Promise<void> {
    if (list.disableGC) return;
    const keep = new Set((valid ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
    const errors: CniError[] = [];
    for (const a of this.cachedAttachments()) {
      if (a.network !== list.name || keep.has(`${a.containerID}\0${a.ifname}`)) continue;
      const rt: RuntimeConf = { containerID: a.containerID, netns: a.netns, ifname: a.ifname, args: a.args, capabilityArgs: a.capabilityArgs };
      try {
        await this.delNetworkList(list, rt);
      } catch (e) {
        const err = asCniError(e);
        errors.push(new CniError(err.code, `failed to delete stale attachment ${a.containerID} ${a.ifname}: ${err.message}`));
      }
    }
    if (versionAtLeast(list.cniVersion, '1.1.0')) {
      // The spec says the runtime must send the list; libcni leaves it out when it has none, and a plugin then
      // cannot tell "nothing is valid" from "not told". Without a list every cached attachment was just deleted,
      // so the honest list is empty. "cni.dev/attachments" is the key's name in the first 1.1.0 text; libcni sends both.
      const extra = { 'cni.dev/valid-attachments': valid ?? [], 'cni.dev/attachments': valid ?? [] };
      for (let i = 0; i < list.plugins.length; i++) {
        try {
          await this.call(list, i, 'GC', undefined, pluginConfig(list, list.plugins[i]!, { extra }));
        } catch (e) {
          errors.push(asCniError(e));
        }
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length) throw new CniError(errors[0]!.code, errors.map((e) => e.message).join('; '));
  }

  /** STATUS of every plugin (1.1.0+; older lists have no STATUS and are taken as ready). Stops at the first that is not ready. */
  async statusNetworkList(list: NetworkConfigList): Promise<void> {
    if (!versionAtLeast(list.cniVersion, '1.1.0')) return;
    for (let i = 0; i < list.plugins.length; i++) {
      await this.call(list, i, 'STATUS', undefined, pluginConfig(list, list.plugins[i]!));
    }
  }
}

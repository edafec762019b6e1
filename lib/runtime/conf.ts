/**
 * Network configuration lists as a runtime loads them (libcni conf.go): from a directory, `.conflist` files
 * first in file-name order, then the deprecated single `.conf`/`.json` files upgraded to a one-plugin list.
 * Everything is validated here, before any plugin runs, so a bad file fails with code 7 naming file and field.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { configError, decodeError, ioError } from '../errors';
import { NAME_PATTERN } from '../types/netconf';
import { compareVersions, isSupportedVersion, LATEST_VERSION } from '../version';

export type PluginConf = Record<string, unknown> & { type: string; capabilities?: Record<string, unknown> };

export interface NetworkConfigList {
  name: string;
  /** The version every plugin of the list is called with (picked from cniVersion/cniVersions). */
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  loadOnlyInlinedPlugins: boolean;
  plugins: PluginConf[];
  /** The exact bytes the list was read from; the result cache keeps them. */
  bytes: Buffer;
  /** Where it came from, for error messages. */
  source: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function decodeObject(bytes: Buffer, source: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw decodeError(`${source}: cannot decode JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw decodeError(`${source}: expected a JSON object (got ${JSON.stringify(raw)?.slice(0, 60)})`);
  return raw;
}

/**
 * The list's version: the highest of `cniVersion` and `cniVersions[]` that this runtime implements
 * (newer ones are skipped, as libcni does, so one file can serve old and new runtimes).
 */
export function pickVersion(raw: Record<string, unknown>, source: string): string {
  const single = raw.cniVersion;
  if (single !== undefined && typeof single !== 'string') throw configError(`${source}: cniVersion: expected a string (got ${JSON.stringify(single)})`);
  const listed = raw.cniVersions;
  if (listed === undefined) return checkKnown(single || '0.1.0', `${source}: cniVersion`);
  if (!Array.isArray(listed)) throw configError(`${source}: cniVersions: expected an array of strings (got ${JSON.stringify(listed)})`);
  const candidates = listed.map((v, i) => {
    if (typeof v !== 'string' || !/^\d+\.\d+\.\d+$/.test(v)) throw configError(`${source}: cniVersions[${i}]: expected a version like "1.0.0" (got ${JSON.stringify(v)})`);
    return v;
  });
  if (single) candidates.push(single);
  const usable = candidates.filter((v) => compareVersions(v, LATEST_VERSION) <= 0).sort(compareVersions);
  const best = usable.at(-1);
  if (!best) throw configError(`${source}: cniVersions: none of [${candidates.join(', ')}] is implemented (newest known is ${LATEST_VERSION})`);
  return checkKnown(best, `${source}: cniVersions`);
}

function checkKnown(v: string, where: string): string {
  if (!isSupportedVersion(v)) throw configError(`${where}: "${v}" is not a CNI version this runtime knows`);
  return v;
}

/** libcni accepts a boolean or the strings "true"/"false" (any case). */
function readBool(raw: Record<string, unknown>, key: string, source: string): boolean {
  const v = raw[key];
  if (v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && ['true', 'false'].includes(v.toLowerCase())) return v.toLowerCase() === 'true';
  throw configError(`${source}: ${key}: expected true or false (got ${JSON.stringify(v)})`);
}

function checkPlugin(p: unknown, where: string): PluginConf {
  if (!isObject(p)) throw configError(`${where}: expected an object (got ${JSON.stringify(p)})`);
  if (typeof p.type !== 'string' || !p.type) throw configError(`${where}.type: expected a plugin name (got ${JSON.stringify(p.type)})`);
  if (p.capabilities !== undefined) {
    if (!isObject(p.capabilities)) throw configError(`${where}.capabilities: expected an object of booleans (got ${JSON.stringify(p.capabilities)})`);
    for (const [k, v] of Object.entries(p.capabilities)) {
      if (typeof v !== 'boolean') throw configError(`${where}.capabilities.${k}: expected true or false (got ${JSON.stringify(v)})`);
    }
  }
  return p as PluginConf;
}

/** Parses a conflist. Plugins found in `<dir>/<name>/*.conf` are added by `loadConfListFile`. */
export function parseConfList(bytes: Buffer, source = 'conflist'): NetworkConfigList {
  const raw = decodeObject(bytes, source);
  if (typeof raw.name !== 'string') throw configError(`${source}: name: expected a string (got ${JSON.stringify(raw.name)})`);
  if (!NAME_PATTERN.test(raw.name)) throw configError(`${source}: name: "${raw.name}" must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$`);
  const cniVersion = pickVersion(raw, source);
  const loadOnlyInlinedPlugins = readBool(raw, 'loadOnlyInlinedPlugins', source);
  const list: NetworkConfigList = {
    name: raw.name,
    cniVersion,
    disableCheck: readBool(raw, 'disableCheck', source),
    disableGC: readBool(raw, 'disableGC', source),
    loadOnlyInlinedPlugins,
    plugins: [],
    bytes,
    source,
  };
  if (raw.plugins === undefined) {
    if (loadOnlyInlinedPlugins) throw configError(`${source}: plugins: missing, and loadOnlyInlinedPlugins is true`);
    return list;
  }
  if (!Array.isArray(raw.plugins)) throw configError(`${source}: plugins: expected an array (got ${JSON.stringify(raw.plugins)?.slice(0, 60)})`);
  if (raw.plugins.length === 0) throw configError(`${source}: plugins: the list is empty`);
  list.plugins = raw.plugins.map((p, i) => checkPlugin(p, `${source}: plugins[${i}]`));
  return list;
}

/** Upgrades a single-plugin config (.conf/.json) to a list of one, as libcni does. */
export function confListFromConf(bytes: Buffer, source = 'conf'): NetworkConfigList {
  const raw = decodeObject(bytes, source);
  const plugin = checkPlugin(raw, source);
  const list = { name: raw.name, cniVersion: raw.cniVersion, plugins: [plugin] };
  return parseConfList(Buffer.from(JSON.stringify(list)), source);
}

/** Files in `dir` with one of `exts`, sorted by name; a missing directory has none. */
export function confFiles(dir: string, exts: readonly string[]): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`cannot read network config directory ${dir}: ${(e as Error).message}`);
  }
  return entries
    .filter((e) => !e.isDirectory() && exts.includes(extname(e.name)))
    .map((e) => e.name)
    .sort()
    .map((n) => join(dir, n));
}

function readFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw ioError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Reads a conflist file plus the plugin files in `<its dir>/<network name>/*.conf` (unless loadOnlyInlinedPlugins). */
export function loadConfListFile(file: string): NetworkConfigList {
  const list = parseConfList(readFile(file), file);
  if (!list.loadOnlyInlinedPlugins) {
    for (const f of confFiles(join(file, '..', list.name), ['.conf'])) list.plugins.push(checkPlugin(decodeObject(readFile(f), f), f));
  }
  if (list.plugins.length === 0) throw configError(`${file}: network "${list.name}" has no plugins`);
  return list;
}

/**
 * Finds network `name` in `dir`: the first `.conflist` (by file name) with that name, else the first
 * `.conf`/`.json` with that name. A file that cannot be parsed is an error even when it is not the one
 * asked for, as in libcni: a broken file in the directory should not go unnoticed.
 */
export function loadNetworkConf(dir: string, name: string): NetworkConfigList {
  const lists = confFiles(dir, ['.conflist']);
  for (const file of lists) {
    const list = loadConfListFile(file);
    if (list.name === name) return list;
  }
  const singles = confFiles(dir, ['.conf', '.json']);
  for (const file of singles) {
    const list = confListFromConf(readFile(file), file);
    if (list.name === name) return list;
  }
  if (!lists.length && !singles.length) throw configError(`no net configurations found in ${dir}`);
  throw configError(`no net configuration with name "${name}" in ${dir}`);
}

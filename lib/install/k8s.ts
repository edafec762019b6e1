/**
 * The two Kubernetes API reads the installer needs (GET one Node, LIST Nodes), over node:https with the
 * service account's token and CA. Answers are checked against the few fields we use, so a bad answer is an
 * error that says what was wrong instead of a broken conflist.
 */
import { readFileSync } from 'node:fs';
import { parseCidr, parseIp } from '../ip';

export interface NodeInfo {
  name: string;
  podCidrs: string[];
  internalIps: string[];
}

export interface ApiConfig {
  server: string;
  tokenFile: string;
  caFile: string;
  timeoutMs?: number;
}

export class ApiError extends Error {}

function readOr(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new ApiError(`cannot read the ${what} ${file}: ${(e as Error).message}`);
  }
}

export function getJson(api: ApiConfig, path: string): Promise<unknown> {
  // Re-read each time: the kubelet rotates projected service account tokens.
  const token = readOr(api.tokenFile, 'service account token');
  const ca = readOr(api.caFile, 'API CA bundle');
  const url = new URL(path, api.server);
  // Loaded at call time: node:https cannot be evaluated into the V8 startup snapshot.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { request } = require('node:https') as typeof import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, timeout: api.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) return reject(new ApiError(`GET ${url.href}: HTTP ${res.statusCode}: ${body.slice(0, 200).trim()}`));
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new ApiError(`GET ${url.href}: answer is not JSON: ${body.slice(0, 80)}`));
        }
      });
      res.on('error', (e) => reject(new ApiError(`GET ${url.href}: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${api.timeoutMs ?? 10_000} ms`)));
    req.on('error', (e) => reject(new ApiError(`GET ${url.href}: ${e.message}`)));
    req.end();
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads the fields we use from a Node object; throws naming the node and the field when one is malformed. */
export function parseNode(v: unknown): NodeInfo {
  if (!isObj(v) || v.kind !== undefined && v.kind !== 'Node') throw new ApiError(`expected a Node, got ${JSON.stringify(v).slice(0, 80)}`);
  const meta = isObj(v.metadata) ? v.metadata : {};
  const name = meta.name;
  if (typeof name !== 'string' || !name) throw new ApiError('a Node without metadata.name');
  const spec = isObj(v.spec) ? v.spec : {};
  // spec.podCIDRs supersedes spec.podCIDR (it holds it first); older API servers send only podCIDR.
  const raw = Array.isArray(spec.podCIDRs) ? spec.podCIDRs : typeof spec.podCIDR === 'string' && spec.podCIDR ? [spec.podCIDR] : [];
  const podCidrs: string[] = [];
  for (const c of raw) {
    const p = typeof c === 'string' ? parseCidr(c) : null;
    if (!p) throw new ApiError(`node ${name}: spec.podCIDRs holds ${JSON.stringify(c)}, not a CIDR`);
    podCidrs.push(c as string);
  }
  if (podCidrs.length > 2 || (podCidrs.length === 2 && parseCidr(podCidrs[0]!)!.addr.family === parseCidr(podCidrs[1]!)!.addr.family)) {
    throw new ApiError(`node ${name}: spec.podCIDRs must be one CIDR or one per family, got ${JSON.stringify(podCidrs)}`);
  }
  const status = isObj(v.status) ? v.status : {};
  const addrs = Array.isArray(status.addresses) ? status.addresses : [];
  const internalIps = addrs.filter((a): a is { type: string; address: string } => isObj(a) && a.type === 'InternalIP' && typeof a.address === 'string' && !!parseIp(a.address)).map((a) => a.address);
  return { name, podCidrs, internalIps };
}

export async function getNode(api: ApiConfig, name: string): Promise<NodeInfo> {
  return parseNode(await getJson(api, `/api/v1/nodes/${encodeURIComponent(name)}`));
}

export async function listNodes(api: ApiConfig): Promise<NodeInfo[]> {
  // resourceVersion=0 lets the API server answer from its watch cache instead of etcd: every node lists every
  // node each period, so on a large cluster this is the difference between cheap and a load on etcd.
  const v = await getJson(api, '/api/v1/nodes?resourceVersion=0');
  if (!isObj(v) || !Array.isArray(v.items)) throw new ApiError(`GET /api/v1/nodes: expected a NodeList with items, got ${JSON.stringify(v).slice(0, 80)}`);
  return v.items.map(parseNode);
}

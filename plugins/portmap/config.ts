/**
 * The portmap network config: its own keys, the port mappings from runtimeConfig (capability portMappings),
 * validated before anything is touched. Every error is code 7 naming the field or the mapping entry.
 */
import * as z from 'zod/mini';
import { configError } from '../../lib/errors';
import type { BackendName, HostportRequest, PortMapping } from '../../lib/firewall/driver';
import { defaultBackend } from '../../lib/firewall/select';
import { parseIp } from '../../lib/ip';
import { parseWith } from '../../lib/types/schema';

/** Condition tokens end up in an iptables-restore line or an nft script: no line breaks, quotes or separators. */
const conditionToken = z.string().check(z.refine((s) => !/[\n\r";#{}]/.test(s), { error: 'may not contain line breaks, quotes, ";", "#" or braces' }));

const port = z.int().check(z.gte(1), z.lte(65535));

const PortMappingSchema = z.looseObject({
  hostPort: port,
  containerPort: port,
  // Runtimes always send it; netavark and podman treat a missing one as tcp.
  protocol: z.optional(z.string()),
  hostIP: z.optional(z.string()),
});

export const PortmapConfSchema = z.looseObject({
  snat: z.optional(z.boolean()),
  masqAll: z.optional(z.boolean()),
  markMasqBit: z.optional(z.int().check(z.gte(0), z.lte(31))),
  externalSetMarkChain: z.optional(z.string().check(z.regex(/^[A-Za-z0-9_.-]{1,28}$/, { error: 'must be an iptables chain name' }))),
  conditionsV4: z.optional(z.array(conditionToken)),
  conditionsV6: z.optional(z.array(conditionToken)),
  backend: z.optional(z.enum(['iptables', 'nftables'])),
  runtimeConfig: z.optional(z.looseObject({ portMappings: z.optional(z.nullable(z.array(PortMappingSchema))) })),
});

/** The firewall options are those the driver takes (lib/firewall/driver.ts), plus the backend and the mappings. */
export type PortmapConfig = Pick<HostportRequest, 'snat' | 'masqAll' | 'markMasqBit' | 'externalSetMarkChain' | 'conditionsV4' | 'conditionsV6' | 'mappings'> & {
  backend: BackendName;
};

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;

function mapping(m: z.infer<typeof PortMappingSchema>, i: number): PortMapping {
  const where = `runtimeConfig.portMappings[${i}]`;
  const protocol = (m.protocol || 'tcp').toLowerCase();
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    throw configError(`${where}.protocol: must be one of tcp, udp, sctp (got ${JSON.stringify(m.protocol)})`);
  }
  if (m.hostIP && !parseIp(m.hostIP)) throw configError(`${where}.hostIP: must be an IP address or "" (got ${JSON.stringify(m.hostIP)})`);
  return { hostPort: m.hostPort, containerPort: m.containerPort, protocol: protocol as PortMapping['protocol'], ...(m.hostIP ? { hostIP: m.hostIP } : {}) };
}

export function parseConfig(raw: Record<string, unknown>): PortmapConfig {
  const c = parseWith(PortmapConfSchema, raw);
  if (c.externalSetMarkChain !== undefined && c.markMasqBit !== undefined) {
    throw configError(`externalSetMarkChain: cannot be combined with markMasqBit (got ${JSON.stringify(c.externalSetMarkChain)} and ${c.markMasqBit})`);
  }
  return {
    snat: c.snat ?? true,
    masqAll: c.masqAll ?? false,
    markMasqBit: c.markMasqBit ?? 13,
    ...(c.externalSetMarkChain !== undefined ? { externalSetMarkChain: c.externalSetMarkChain } : {}),
    ...(c.conditionsV4?.length ? { conditionsV4: c.conditionsV4 } : {}),
    ...(c.conditionsV6?.length ? { conditionsV6: c.conditionsV6 } : {}),
    backend: c.backend ?? defaultBackend(),
    mappings: (c.runtimeConfig?.portMappings ?? []).map(mapping),
  };
}

/**
 * The network configuration every plugin receives (SPEC.md "Plugin configuration objects"). Plugins extend
 * `NetConfBase` with their own keys; unknown keys pass through untouched (looseObject) so chained plugins
 * and IPAM see exactly what the runtime sent.
 */
import * as z from 'zod/mini';

export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

export const NetConfBase = z.looseObject({
  cniVersion: z.string(),
  name: z.string().check(z.regex(NAME_PATTERN, { error: 'must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$' })),
  type: z.string().check(z.minLength(1)),
  capabilities: z.optional(z.record(z.string(), z.boolean())),
  ipam: z.optional(z.looseObject({ type: z.optional(z.string()) })),
  dns: z.optional(
    z.looseObject({
      nameservers: z.optional(z.array(z.string())),
      domain: z.optional(z.string()),
      search: z.optional(z.array(z.string())),
      options: z.optional(z.array(z.string())),
    }),
  ),
  args: z.optional(z.looseObject({ cni: z.optional(z.looseObject({})) })),
  runtimeConfig: z.optional(z.looseObject({})),
  prevResult: z.optional(z.unknown()),
});
export type NetConf = z.infer<typeof NetConfBase>;

/** STATUS and GC (1.1.0) may carry a list of valid attachments. */
export const ValidAttachmentsSchema = z.optional(
  z.array(z.looseObject({ containerID: z.string(), ifname: z.string() })),
);
export type Attachment = { containerID: string; ifname: string };

/** The runtime's valid attachments for GC, from `cni.dev/valid-attachments`. */
export function validAttachments(conf: Record<string, unknown>): Attachment[] {
  const raw = conf['cni.dev/valid-attachments'];
  return Array.isArray(raw)
    ? raw.filter((a): a is Attachment => !!a && typeof a.containerID === 'string' && typeof a.ifname === 'string')
    : [];
}

/** Reads `args.cni.<key>` (conventions: args.cni.ips, args.cni.mac). */
export function argsCni(conf: NetConf, key: string): unknown {
  return (conf.args?.cni as Record<string, unknown> | undefined)?.[key];
}

/** Reads `runtimeConfig.<key>` (set by the runtime from declared capabilities). */
export function runtimeConfig(conf: NetConf, key: string): unknown {
  return (conf.runtimeConfig as Record<string, unknown> | undefined)?.[key];
}

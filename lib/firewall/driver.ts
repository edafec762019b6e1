/**
 * One firewall interface, two backends (iptables, nftables), chosen at run time, in the spirit of netavark's
 * FirewallDriver. Plugins ask for "masquerade this attachment" or "publish these ports for this attachment";
 * they never write iptables or nft syntax. Every rule a backend writes carries the network name and the
 * container ID (in a comment or in a name derived from them) so DEL and GC find an attachment's rules
 * without its netns, its addresses or a prevResult.
 *
 * Cost rules for implementations: one process per operation (`iptables-restore --noflush` or `nft -f -`),
 * never list or save a whole table (only our own chains or table by name), never walk other containers' rules.
 */

export type BackendName = 'iptables' | 'nftables';

export interface AttachmentKey {
  network: string;
  containerID: string;
  ifname: string;
}

/** Masquerade of a container's outbound traffic (bridge `ipMasq`). */
export interface MasqueradeRequest extends AttachmentKey {
  /** The container's addresses with prefix ("10.1.0.5/16"); traffic to their subnet is not masqueraded. */
  addresses: string[];
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** "" / undefined / "0.0.0.0" / "::" mean any local address. */
  hostIP?: string;
}

/** Port publishing for one attachment (portmap). */
export interface HostportRequest extends AttachmentKey {
  mappings: PortMapping[];
  /** The container's addresses with prefix, from prevResult. */
  addresses: string[];
  snat: boolean;
  masqAll: boolean;
  markMasqBit: number;
  externalSetMarkChain?: string;
  conditionsV4?: string[];
  conditionsV6?: string[];
}

export interface PreparedMasquerade {
  add(r: MasqueradeRequest): Promise<void>;
  /** Nothing is applied. */
  cancel(): Promise<void>;
}

export interface FirewallDriver {
  readonly name: BackendName;
  /** Whether this backend works here (tools present, kernel answers). May spawn; not for the ADD hot path. */
  available(): Promise<boolean>;

  addMasquerade(r: MasqueradeRequest): Promise<void>;
  /**
   * Starts what addMasquerade will run before the addresses are known (bridge calls it while IPAM works), so the
   * process's start is off the ADD's path; `add` is then addMasquerade. Either `add` or `cancel` must follow.
   */
  prepareMasquerade?(): PreparedMasquerade;
  /**
   * Removes the attachment's masquerade; `addresses` may be empty (rules are found by network + container ID).
   * Resolves true when something was there to remove (so a caller can skip looking in the other backend).
   */
  delMasquerade(r: MasqueradeRequest): Promise<boolean>;
  /** Throws a CniError naming what is missing. */
  checkMasquerade(r: MasqueradeRequest): Promise<void>;
  /** Removes masquerade rules of `network` whose attachment is not in `valid`. */
  gcMasquerade(network: string, valid: AttachmentKey[]): Promise<void>;

  addHostports(r: HostportRequest): Promise<void>;
  /** Removes the attachment's port mappings; works without prevResult and without the netns. */
  delHostports(r: HostportRequest): Promise<void>;
  checkHostports(r: HostportRequest): Promise<void>;
  gcHostports(network: string, valid: AttachmentKey[]): Promise<void>;
}

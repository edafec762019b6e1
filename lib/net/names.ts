/**
 * Names derived from the attachment. The host end of a container's veth is named from (containerID, ifname),
 * so DEL finds it without the netns or a prevResult; its alias records the attachment so a hash collision
 * never makes us touch another container's veth.
 */
import { sha512Hex } from '../hash';

/** `veth` + 8 hex; `attempt` > 0 picks the alternatives tried when the first name belongs to someone else. */
export function hostVethName(containerID: string, ifname: string, attempt = 0): string {
  const h = sha512Hex(`${containerID}/${ifname}${attempt ? `/${attempt}` : ''}`);
  return `veth${h.slice(0, 8)}`;
}

/** How many alternative names ADD tries (and DEL looks at). */
export const VETH_NAME_ATTEMPTS = 3;

/** The alias on the host veth ("cni/<containerID>/<ifname>", cut to the kernel's 255 bytes). */
export const attachmentAlias = (containerID: string, ifname: string) => `cni/${containerID}/${ifname}`.slice(0, 255);

/**
 * The bridge-side end of a VLAN's gateway veth (`<bridge>.<vlan>` is the other end): derived from that name, so
 * concurrent ADDs that create the gateway agree on it.
 */
export const vlanGatewayPeer = (gateway: string) => hostVethName(gateway, 'vlan-gateway');

/** The alias on a VLAN gateway's bridge port. */
export const vlanGatewayAlias = (gateway: string) => `cni/vlan-gateway/${gateway}`;

/** The iptables backend: masquerade (bridge) and host ports (portmap), composed into one driver. */
import type { FirewallDriver } from '../driver';
import * as masq from './masquerade';
import * as hostport from './hostport';

export const iptablesDriver: FirewallDriver = {
  name: 'iptables',
  available: masq.available,
  addMasquerade: masq.addMasquerade,
  delMasquerade: masq.delMasquerade,
  checkMasquerade: masq.checkMasquerade,
  gcMasquerade: masq.gcMasquerade,
  addHostports: hostport.addHostports,
  delHostports: hostport.delHostports,
  checkHostports: hostport.checkHostports,
  gcHostports: hostport.gcHostports,
};

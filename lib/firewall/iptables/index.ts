/** The iptables backend: masquerade (bridge) and host ports (portmap), composed into one driver. */
import { composeDriver } from '../compose';
import * as hostport from './hostport';
import * as masq from './masquerade';

export const iptablesDriver = composeDriver('iptables', masq, hostport);

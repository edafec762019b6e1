/** The nftables backend: masquerade (bridge) and host ports (portmap), composed into one driver. */
import { composeDriver } from '../compose';
import * as hostport from './hostport';
import * as masq from './masquerade';

export const nftablesDriver = composeDriver('nftables', masq, hostport);

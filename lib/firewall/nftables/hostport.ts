/** nftables host ports for portmap. (Placeholder until portmap lands.) */
import { internalError } from '../../errors';
import type { AttachmentKey, HostportRequest } from '../driver';

const notYet = async (): Promise<never> => {
  throw internalError('nftables hostport: not implemented yet');
};
export const addHostports: (r: HostportRequest) => Promise<void> = notYet;
export const delHostports: (r: HostportRequest) => Promise<void> = notYet;
export const checkHostports: (r: HostportRequest) => Promise<void> = notYet;
export const gcHostports: (network: string, valid: AttachmentKey[]) => Promise<void> = notYet;

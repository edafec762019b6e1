/** nftables masquerade for bridge ipMasq. (Placeholder until bridge lands.) */
import { internalError } from '../../errors';
import type { AttachmentKey, MasqueradeRequest } from '../driver';

const notYet = async (): Promise<never> => {
  throw internalError('nftables masquerade: not implemented yet');
};
export const available = async (): Promise<boolean> => false;
export const addMasquerade: (r: MasqueradeRequest) => Promise<void> = notYet;
export const delMasquerade: (r: MasqueradeRequest) => Promise<void> = notYet;
export const checkMasquerade: (r: MasqueradeRequest) => Promise<void> = notYet;
export const gcMasquerade: (network: string, valid: AttachmentKey[]) => Promise<void> = notYet;

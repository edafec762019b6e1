/** The host-local plugin: command functions for lib/skel. (Placeholder until the plugin lands.) */
import { CniError, ErrorCode } from '../../lib/errors';
import type { Plugin } from '../../lib/skel';

const notYet = async (): Promise<never> => {
  throw new CniError(ErrorCode.Internal, 'host-local: not implemented yet');
};

export const plugin: Plugin = { name: 'host-local', add: notYet, del: notYet, check: notYet };

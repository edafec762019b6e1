/** Non-plugin entry points of the multi-call executable (cnitool, the installer). Each returns an exit code. */
import { cnitool } from './cnitool';
import { install } from './install';

export type Tool = (args: string[]) => Promise<number>;
export const tools: Record<string, Tool> = { cnitool, 'cni-install': install };

/** Every case, in the order they run: protocol first, then each plugin's documented behaviour. */
import type { Case } from '../harness';
import { bridgeCases } from './bridge';
import { hostLocalCases } from './host-local';
import { portmapCases } from './portmap';
import { protocolCases } from './protocol';

export const allCases: Case[] = [...protocolCases, ...hostLocalCases, ...bridgeCases, ...portmapCases];

/**
 * The bridge plugin. One request: config.ts (validate) -> plan.ts (pure: what to change) -> lib/net and
 * lib/firewall (apply in as few processes as possible) -> the result. Commands live in add/del/check/maintenance.
 */
import type { Plugin } from '../../lib/skel';
import { add } from './add';
import { check } from './check';
import { del } from './del';
import { gc, status } from './maintenance';

export const plugin: Plugin = { name: 'bridge', add, del, check, status, gc };

/** Which boot this is, for `reclaimAfterReboot`: the kernel's boot_id and the wall-clock time the boot started. */
import { readFileSync } from 'node:fs';
import { ioError } from '../../lib/errors';

export interface Boot {
  id: string;
  startedMs: number;
}

export function currentBoot(): Boot {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    if (!id || !btime) throw new Error('boot_id or btime missing');
    return { id, startedMs: Number(btime) * 1000 };
  } catch (e) {
    throw ioError(`ipam.reclaimAfterReboot: cannot tell the current boot: ${(e as Error).message}`);
  }
}

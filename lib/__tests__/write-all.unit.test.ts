/** A plugin's result reaches a runtime that reads its end late, also through a non-blocking pipe that fills up. */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAllSync } from '../skel';

test('writeAllSync writes 1 MiB into a full non-blocking pipe whose reader starts 300 ms late', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cni-write-'));
  try {
    const fifo = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('sh', ['-c', `exec 3<${fifo}; sleep 0.3; wc -c <&3`]);
    let out = '';
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => reader.on('close', r));
    // Opening the write end without blocking works once the reader has opened its end.
    let fd = -1;
    for (let i = 0; fd < 0 && i < 100; i++) {
      try {
        fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    writeAllSync(fd, 'x'.repeat(1 << 20));
    closeSync(fd);
    await exited;
    expect(out.trim()).toBe(String(1 << 20));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

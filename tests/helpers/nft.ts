/** An nft without interactive mode (as some distributions build it), for the fallbacks of lib/exec's nft sessions. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const nftPath = execFileSync('sh', ['-c', 'command -v nft'], { encoding: 'utf8' }).trim();

/** Runs fn with a PATH whose nft refuses -i as such a build does; everything else goes to the real nft. */
export async function withoutInteractiveNft(fn: (env: NodeJS.ProcessEnv) => Promise<void>): Promise<void> {
  const bin = mkdtempSync(join(tmpdir(), 'nft-noi-'));
  try {
    writeFileSync(join(bin, 'nft'), `#!/bin/sh\ncase " $* " in *" -i "*) echo 'Error: interactive CLI not supported in this build' >&2; exit 1;; esac\nexec ${nftPath} "$@"\n`, { mode: 0o755 });
    await fn({ ...process.env, PATH: `${bin}:${process.env.PATH}` });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
}

/**
 * Bundle entry. Under a V8 startup snapshot the module graph is evaluated at build time and `main` runs
 * at process start; without one (node dist/cni.cjs) it runs at once.
 */
import { main, PLUGINS } from './main';
import { warmup } from './warmup';

// A plain require: esbuild's ESM wrapper around a builtin cannot be serialized into the snapshot.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const v8 = require('node:v8') as typeof import('node:v8');

const start = () => {
  // In a single-executable app argv is [exe, exe, ...args]; under node it is [node, script, ...args].
  const args = process.argv.slice(2);
  main(process.argv0, args).catch((e: unknown) => {
    process.stderr.write(`fatal: ${(e as Error)?.message ?? String(e)}\n`);
    process.exitCode = 1;
  });
};

if (v8.startupSnapshot?.isBuildingSnapshot()) {
  v8.startupSnapshot.setDeserializeMainFunction(start);
  // The snapshot then holds the bytecode of everything the warm-up ran (see warmup.ts).
  void warmup(PLUGINS);
} else start();

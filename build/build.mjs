// Builds dist/: one Node single-executable application (esbuild bundle + V8 startup snapshot, injected into a
// stripped copy of this machine's node with postject) and hard links to it named after each plugin and tool.
// Incremental: the executable is rebuilt only when the bundle changes.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import nodePatch from './node-patch.cjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'out');
const dist = join(root, 'dist');
const NAMES = ['bridge', 'host-local', 'portmap', 'cnitool', 'cni-install'];
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const snapshot = process.env.CNI_TS_NO_SNAPSHOT ? false : true;
const log = (m) => process.env.npm_config_loglevel === 'silent' || process.stderr.write(`build: ${m}\n`);

mkdirSync(out, { recursive: true });
mkdirSync(dist, { recursive: true });

// Intermediate files carry our pid: several builds may run at once (parallel test runs); finals are renamed into place.
const tag = `${process.pid}`;
const bundle = join(out, 'cni.cjs');
const bundleTmp = join(out, `cni.${tag}.cjs`);
await build({
  entryPoints: [join(root, 'cmd', 'entry.ts')],
  outfile: bundleTmp,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ESM entry points first, so zod/mini tree-shakes.
  mainFields: ['module', 'main'],
  conditions: ['import', 'module'],
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// Test fixtures run under node (they are not shipped).
await build({
  entryPoints: [join(root, 'tests', 'fixtures', 'noop-plugin.ts')],
  outfile: join(out, `noop-plugin.${tag}.cjs`),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync(join(out, `noop-plugin.${tag}.cjs`), 0o755);
renameSync(join(out, `noop-plugin.${tag}.cjs`), join(out, 'noop-plugin.cjs'));
renameSync(bundleTmp, bundle);

// The tuning of node (node-patch.cjs) is part of what the executable is made from.
const PATCH_VERSION = createHash('sha256').update(readFileSync(join(root, 'build', 'node-patch.cjs'))).digest('hex').slice(0, 12);
const hash = createHash('sha256').update(readFileSync(bundle)).update(process.version).update(String(snapshot)).update(PATCH_VERSION).digest('hex');
const exe = join(dist, 'cni');
const stamp = join(out, 'cni.stamp');
if (existsSync(exe) && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) {
  log('dist/cni is up to date');
} else {
  // A stripped node is ~12 MiB smaller; strip and tune V8's settings (node-patch.cjs) once per node version.
  const base = join(out, `node-${process.version}-${PATCH_VERSION}`);
  if (!existsSync(base)) {
    const work = `${base}.${tag}`;
    copyFileSync(process.execPath, work);
    try {
      execFileSync('strip', [work], { stdio: 'ignore' });
    } catch {
      log('strip not available; using an unstripped node');
    }
    const notDone = nodePatch.tuneFile(work, work, process.execPath);
    if (notDone) log(`node left partly as it is (${notDone}); every start is a few ms slower`);
    // The tuned node must still be a working node.
    execFileSync(work, ['-e', '0'], { stdio: 'inherit' });
    renameSync(work, base);
  }

  // Build from a private copy of the bundle so a concurrent build cannot change it under us.
  const seaMain = join(out, `cni.sea.${tag}.cjs`);
  copyFileSync(bundle, seaMain);
  const blob = join(out, `sea.${tag}.blob`);
  const seaConfig = join(out, `sea.${tag}.json`);
  writeFileSync(seaConfig, JSON.stringify({ main: seaMain, output: blob, disableExperimentalSEAWarning: true, useSnapshot: snapshot, useCodeCache: !snapshot }));
  // The blob is built by the node it is injected into: V8 refuses a snapshot made under other flags.
  // Node warns about experimental features on every blob; show its output only when it fails.
  try {
    execFileSync(base, ['--experimental-sea-config', seaConfig], { stdio: 'pipe' });
  } catch (e) {
    process.stderr.write(String(e.stderr ?? ''));
    throw new Error(`building the SEA blob failed (${e.signal ?? e.status}); a module evaluated at load time may not be snapshot-safe`);
  }

  // Without this mark the executable starts only on CPUs with this machine's features (node-patch.cjs).
  let blobBytes = readFileSync(blob);
  if (snapshot) {
    const v8Tag = Number(execFileSync(base, ['-p', "require('v8').cachedDataVersionTag()"], { encoding: 'utf8' }).trim());
    blobBytes = nodePatch.markSnapshotPortable(blobBytes, v8Tag);
    try {
      blobBytes = nodePatch.dropBuiltinCodeCache(blobBytes);
    } catch (e) {
      log(`snapshot keeps the built-in modules' code cache (${e.message}); every start is ~2 ms slower`);
    }
  }

  const exeTmp = `${exe}.${tag}`;
  copyFileSync(base, exeTmp);
  const require = createRequire(import.meta.url);
  const { inject } = require('postject');
  // postject logs its own progress; keep the build quiet.
  const origLog = console.log;
  console.log = () => {};
  const origWarn = console.warn;
  console.warn = () => {};
  try {
    await inject(exeTmp, 'NODE_SEA_BLOB', blobBytes, { sentinelFuse: FUSE });
  } finally {
    console.log = origLog;
    console.warn = origWarn;
  }
  chmodSync(exeTmp, 0o755);
  // rename() replaces the file atomically: a plugin being exec'd keeps its old inode.
  renameSync(exeTmp, exe);
  rmSync(seaMain, { force: true });
  rmSync(blob, { force: true });
  rmSync(seaConfig, { force: true });
  writeFileSync(stamp, hash);
  log(`dist/cni built (${(statSync(exe).size / 1048576).toFixed(1)} MiB, snapshot ${snapshot ? 'on' : 'off'})`);
}
// Hard links: one copy of node on disk, each name dispatches to its plugin; `cp -a dist/* /opt/cni/bin/` keeps them linked.
const exeIno = statSync(exe).ino;
for (const n of NAMES) {
  const p = join(dist, n);
  // rename() between two links of one inode is a no-op that leaves the source behind, so skip current links.
  if (existsSync(p) && statSync(p).ino === exeIno) continue;
  const tmp = `${p}.${tag}`;
  rmSync(tmp, { force: true });
  linkSync(exe, tmp);
  renameSync(tmp, p);
}

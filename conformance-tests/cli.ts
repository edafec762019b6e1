/**
 * npm run conformance -- --plugins DIR [--filter REGEX] [--json FILE] [--strict]   (--list: the cases and their basis)
 * Certifies the CNI plugins in DIR; exits 1 on any FAIL (and on WARN with --strict), 2 on bad usage.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { allCases } from './cases';
import { cleanupAll } from './env';
import { KNOWN_PLUGINS } from './probe';
import { counts, header, row, summary } from './report';
import { runSuite } from './suite';

const USAGE = 'usage: conformance --plugins DIR [--filter REGEX] [--json FILE] [--strict] | --list';

function parseArgs(argv: string[]) {
  const o: { plugins?: string; filter?: RegExp; json?: string; strict: boolean } = { strict: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--plugins') o.plugins = resolve(val());
    else if (a === '--filter') o.filter = new RegExp(val());
    else if (a === '--json') o.json = resolve(val());
    else if (a === '--strict') o.strict = true;
    else if (a === '--list') {
      for (const c of allCases) console.log(`${c.id.padEnd(40)} ${c.level.padEnd(6)} ${c.basis}`);
      process.exit(0);
    }
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!o.plugins) throw new Error('--plugins DIR is required');
  return { ...o, plugins: o.plugins };
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) {
    console.error('conformance: needs root (it creates network namespaces)');
    process.exit(2);
  }
  const stop = async (sig: string) => {
    console.error(`\n${sig}: removing test namespaces`);
    await cleanupAll();
    process.exit(130);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  if (!KNOWN_PLUGINS.some((p) => existsSync(join(opts.plugins, p)))) {
    console.error(`conformance: ${opts.plugins} holds none of ${KNOWN_PLUGINS.join(', ')}: nothing to certify`);
    process.exit(2);
  }
  const width = Math.max(...allCases.map((c) => c.id.length));
  console.log(`CNI conformance: ${opts.plugins}\n${header(width)}`);
  const report = await runSuite({ pluginDir: opts.plugins, filter: opts.filter, onOutcome: (o) => console.log(row(o, width)) });
  console.log(`\nversions: ${Object.entries(report.versions).map(([p, v]) => `${p} [${v.join(' ')}]`).join(', ') || 'none'}`);
  console.log(summary(report));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(report, null, 2));
  const c = counts(report.outcomes);
  process.exit(c.FAIL > 0 || (opts.strict && c.WARN > 0) ? 1 : 0);
}

void main();

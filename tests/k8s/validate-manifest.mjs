// Validates Kubernetes manifests offline against the API's schemas (npm kubernetes-models, generated from the
// Kubernetes OpenAPI spec): types, required fields, formats. `kubectl apply --dry-run=client` cannot do this here:
// it downloads the schemas from an API server. Unknown fields, which those schemas allow, are caught by
// type-checking each document against the models' TypeScript interfaces (excess property checks), as
// `kubectl --validate=strict` would reject them.
// usage: node validate-manifest.mjs FILE...   prints {"FILE#i Kind/name": "ok" | "error..."} as JSON; exit 1 on any error
import { readFileSync, writeFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const modulePath = (apiVersion) => `kubernetes-models/${apiVersion}`;
const report = {};
const typed = [];

for (const file of process.argv.slice(2)) {
  parseAllDocuments(readFileSync(file, 'utf8')).forEach((doc, i) => {
    const label = `${file}#${i}`;
    if (doc.errors.length) return (report[label] = `YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    typed.push({ label, obj: doc.toJSON() });
  });
}

for (const t of typed) {
  const { apiVersion, kind, metadata } = t.obj ?? {};
  t.label += ` ${kind}/${metadata?.name}`;
  try {
    const mod = await import(modulePath(apiVersion));
    const Model = mod[kind];
    if (!Model) throw new Error(`unknown kind ${kind} in ${apiVersion}`);
    new Model(t.obj).validate();
    report[t.label] = 'ok';
  } catch (e) {
    report[t.label] = `schema: ${e.message}`;
  }
}

// Unknown fields: one TypeScript file assigning each document to its model's interface.
// Inside the repository, so that the check file resolves kubernetes-models from node_modules.
mkdirSync(join(root, 'build', 'out'), { recursive: true });
const dir = mkdtempSync(join(root, 'build', 'out', 'manifest-check-'));
try {
  const lines = [];
  const checked = typed.filter((t) => report[t.label] === 'ok');
  checked.forEach((t, i) => {
    lines.push(`import type { I${t.obj.kind} as T${i} } from '${modulePath(t.obj.apiVersion)}/${t.obj.kind}';`);
    lines.push(`export const d${i}: T${i} = ${JSON.stringify(t.obj)};`);
  });
  writeFileSync(join(dir, 'check.ts'), lines.join('\n') + '\n');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', join(dir, 'check.ts')], { stdio: 'pipe', cwd: root });
  } catch (e) {
    const out = String(e.stdout ?? '') + String(e.stderr ?? '');
    for (const m of out.matchAll(/check\.ts\((\d+),\d+\): error TS\d+: ([^\n]+)/g)) {
      const t = checked[Math.floor((Number(m[1]) - 1) / 2)];
      if (t) report[t.label] = `${report[t.label] === 'ok' ? '' : `${report[t.label]}; `}unknown or mistyped field: ${m[2]}`;
    }
    if (!/check\.ts\(/.test(out)) throw new Error(`tsc failed: ${out}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

process.stdout.write(JSON.stringify(report, null, 1) + '\n');
process.exitCode = Object.values(report).every((v) => v === 'ok') ? 0 : 1;

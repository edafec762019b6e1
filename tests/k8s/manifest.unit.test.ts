/**
 * The DaemonSet manifest: valid against the Kubernetes API schemas (offline, see validate-manifest.mjs), shaped as
 * the issue asks (kube-system, hostNetwork, tolerates every taint, read-only access to nodes, hostPath CNI
 * folders, NODE_NAME from the downward API), and consistent with the installer's flags and the image recipe.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseOptions } from '../../lib/install/options';

const ROOT = join(__dirname, '..', '..');
const MANIFEST = join(ROOT, 'deploy', 'cni-ts.yaml');
const text = readFileSync(MANIFEST, 'utf8');
const docs = parseAllDocuments(text).map((d) => d.toJSON());
const byKind = (kind: string) => docs.find((d) => d.kind === kind);

function validate(...files: string[]): { code: number; report: Record<string, string> } {
  const r = spawnSync(process.execPath, [join(__dirname, 'validate-manifest.mjs'), ...files], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status ?? 1, report: JSON.parse(r.stdout || '{}') };
}

describe('deploy/cni-ts.yaml', () => {
  it('passes the Kubernetes schema check, unknown fields included', () => {
    const r = validate(MANIFEST);
    expect(Object.values(r.report)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(r.code).toBe(0);
  });

  it('the schema check rejects a mistyped value, a missing required field and an unknown field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cni-manifest-'));
    try {
      const cases: [string, string, RegExp][] = [
        ['hostNetwork: true', 'hostNetwork: "yes"', /hostNetwork must be boolean/],
        ['        - name: cni-install\n', '        - workingDir: /\n', /containers\/0 must have required property name/],
        ['hostNetwork: true', 'hostNetwork: true\n      hostNetwrok: true', /'"hostNetwrok"' does not exist in type 'IPodSpec'/],
      ];
      // One validator run for all (it type-checks every file in one compiler run).
      const files = cases.map(([from, to], i) => {
        expect(text).toContain(from);
        const f = join(dir, `bad${i}.yaml`);
        writeFileSync(f, text.replace(from, to));
        return f;
      });
      const r = validate(...files);
      expect(r.code).toBe(1);
      cases.forEach(([, , want], i) => {
        const errors = Object.entries(r.report).filter(([k, v]) => k.startsWith(`${files[i]}#`) && v !== 'ok');
        expect(errors.map(([, v]) => v).join('\n')).toMatch(want);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is a kube-system DaemonSet on the host network that tolerates every taint', () => {
    const ds = byKind('DaemonSet');
    expect(ds.metadata.namespace).toBe('kube-system');
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(pod.serviceAccountName).toBe(byKind('ServiceAccount').metadata.name);
    expect(byKind('ServiceAccount').metadata.namespace).toBe('kube-system');
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels);
  });

  it('grants read access to nodes and nothing else', () => {
    const role = byKind('ClusterRole');
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
    const binding = byKind('ClusterRoleBinding');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: byKind('ServiceAccount').metadata.name, namespace: 'kube-system' }]);
  });

  it("mounts the host's CNI folders where the installer's flags point, and gets NODE_NAME from the downward API", () => {
    const pod = byKind('DaemonSet').spec.template.spec;
    const c = pod.containers[0];
    expect(c.env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    const opts = parseOptions(c.args, { NODE_NAME: 'n1', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, c.command[0]);
    const hostPathOf = (mountDir: string) => {
      const m = c.volumeMounts.find((v: { mountPath: string }) => v.mountPath === mountDir);
      return pod.volumes.find((v: { name: string }) => v.name === m?.name)?.hostPath?.path;
    };
    expect(hostPathOf(opts.binDir)).toBe('/opt/cni/bin');
    expect(hostPathOf(opts.confDir)).toBe('/etc/cni/net.d');
    expect(opts.sourceDir).toBe('/cni');
    expect(opts.apiServer).toBe('https://10.96.0.1:443');
    expect(c.securityContext.capabilities.add).toContain('NET_ADMIN');
  });

  it("runs the image's installer, and the image carries every name the installer installs", () => {
    const docker = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
    const c = byKind('DaemonSet').spec.template.spec.containers[0];
    expect(docker).toContain('COPY dist/cni /cni/cni');
    const linked = /for n in ([\w -]+); do ln \/cni\/cni/.exec(docker)![1]!.split(' ');
    const opts = parseOptions(c.args, { NODE_NAME: 'n1', KUBERNETES_SERVICE_HOST: 'h' }, c.command[0]);
    for (const n of [...opts.plugins, 'cni-install']) expect(linked).toContain(n);
    expect(c.command).toEqual(['/cni/cni-install']);
    expect(docker).toMatch(/iproute2 nftables/);
  });
});

/**
 * containerd (Debian's 1.6) runs a container networked by our bridge, host-local and portmap: `ctr run --cni`
 * on a private containerd (own socket, root and state), inside a throwaway network namespace with private
 * overlays over the paths containerd and CNI use (see private-root.ts), so the machine is untouched.
 * The container must get its address from host-local and reach the gateway; after it exits, ctr's DEL (sent
 * with an empty netns path) must leave no veth, reservation, cache entry or iptables rule behind.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_REFERENCE, PLUGIN_DIR, sh, uniqueName, withSandbox } from '../helpers/netns';
import { BUSYBOX, busyboxOciArchive } from './image';
import { missing, privateRoot } from './private-root';

const SUBNET = '198.51.100.128/26';
const GATEWAY = '198.51.100.129';
const IMAGE = 'docker.io/library/cnitest-busybox:latest';

const lacking = missing(['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', BUSYBOX]);
const why = lacking.length ? ` (skipped: needs ${lacking.join(', ')}; apt-get install containerd runc busybox-static, run as root)` : '';

(why ? test.skip : test)(`ctr run --cni: a container gets our address, reaches the gateway, and leaves nothing${why}`, async () => {
  await withSandbox(async (s) => {
    const net = uniqueName('ctdn');
    const bridge = uniqueName('ctdb');
    const netconf = join(s.dir, 'net.d');
    mkdirSync(netconf);
    const ipamDir = join(s.dir, 'ipam');
    writeFileSync(
      join(netconf, '10-ctd.conflist'),
      JSON.stringify({
        // containerd 1.6's libcni stops at 1.0.0.
        cniVersion: '1.0.0',
        name: net,
        plugins: [
          { type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', subnet: SUBNET, routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir } },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    const archive = await busyboxOciArchive(join(s.dir, 'image'), IMAGE);
    const d = s.dir;
    writeFileSync(join(d, 'containerd.toml'), `version = 2\nroot = "${d}/root"\nstate = "${d}/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "${d}/c.sock"\n`);
    const ctr = `ctr -a ${d}/c.sock -n cnitest`;
    const script = `${privateRoot(join(d, 'work'), netconf, PLUGIN_DIR)}
# Our plugins log every process they start here: proof that ctr ran ours.
export CNI_TS_TRACE=${d}/trace
containerd --config ${d}/containerd.toml >${d}/containerd.log 2>&1 &
CTD=$!
trap 'kill $CTD 2>/dev/null; wait $CTD 2>/dev/null || true' EXIT
for i in $(seq 100); do [ -S ${d}/c.sock ] && ${ctr} version >/dev/null 2>&1 && break; sleep 0.1; done
${ctr} image import --snapshotter native ${archive} >/dev/null
echo "== run"
${ctr} run --rm --cni --snapshotter native ${IMAGE} ${uniqueName('ctdc')} sh -c 'ip -4 -o addr show eth0; ping -c 1 -W 3 ${GATEWAY} >/dev/null && echo REACHED-GATEWAY'
echo "== after"
echo "containers: $(${ctr} containers ls -q | wc -l)"
echo "veths: $(ip -o link show master ${bridge} | wc -l)"
echo "reserved: $(ls ${ipamDir}/${net} 2>/dev/null | grep -c '^[0-9]' || true)"
echo "cache: $(ls /var/lib/cni/results 2>/dev/null | wc -l)"
echo "nat rules: $(iptables-save -t nat | grep -c '198\\.51\\.100\\.1[2-9][0-9]/32' || true)"
`;
    const r = await sh('ip', ['netns', 'exec', s.hostNs, 'bash', '-c', script], { timeoutMs: 100_000 });
    const log = await sh('tail', ['-20', join(d, 'containerd.log')]);
    if (r.code !== 0) throw new Error(`containerd run failed (${r.code}):\n${r.stdout}\n${r.stderr}\ncontainerd.log:\n${log.stdout}`);
    if (process.env.CNI_TEST_VERBOSE) process.stderr.write(r.stdout);
    const [during = '', after = ''] = r.stdout.split('== run')[1]!.split('== after');
    // host-local's first address; the sandbox namespace is fresh, so nothing else holds it.
    expect(during).toMatch(/eth0\s+inet 198\.51\.100\.130\/26/);
    expect(during).toContain('REACHED-GATEWAY');
    expect(after).toContain('containers: 0');
    expect(after).toContain('veths: 0');
    expect(after).toContain('reserved: 0');
    expect(after).toContain('cache: 0');
    // The Go bridge leaks its masquerade rules on a DEL without netns (REFERENCE.md); ours must not.
    if (!IS_REFERENCE) expect(after).toContain('nat rules: 0');
    if (!IS_REFERENCE) expect(readFileSync(join(d, 'trace'), 'utf8')).toMatch(/ip .*-batch/);
  });
});

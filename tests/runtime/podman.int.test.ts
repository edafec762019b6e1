/**
 * Podman (Debian's 4.3, CNI backend) serves a published port through our bridge, host-local and portmap.
 * Podman runs inside a throwaway network namespace with private overlays over /etc, /opt, /var/lib and /run
 * (private-root.ts), its own containers.conf (cni_plugin_dirs lists our plugins first; podman's conflist also
 * names firewall and tuning, which come from the Go plugins after ours), and private storage and network
 * config dirs, so the machine's podman state is untouched.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IS_REFERENCE, PLUGIN_DIR, sh, uniqueName, withSandbox } from '../helpers/netns';
import { cacheEntry, cachedAttachments, readCachedResult } from '../../lib/runtime/cache';
import { BUSYBOX, busyboxTarball } from './image';
import { missing, privateRoot } from './private-root';

const SUBNET = '198.51.100.192/26';
const HOST_PORT = 18080;
const GO_PLUGINS = '/usr/lib/cni';

const lacking = missing(['podman', 'runc', 'conmon', BUSYBOX, `${GO_PLUGINS}/firewall`, `${GO_PLUGINS}/tuning`]);
const why = lacking.length ? ` (skipped: needs ${lacking.join(', ')}; apt-get install podman runc busybox-static containernetworking-plugins, run as root)` : '';

// A bounded HTTP GET with this machine's node (busybox wget is unreliable on these hosts).
const GET = `const r=require('http').get(process.argv[1],{timeout:5000},s=>{let b='';s.on('data',d=>b+=d);s.on('end',()=>{process.stdout.write(b);process.exit(0)})});r.on('timeout',()=>process.exit(2));r.on('error',e=>{console.error(e.message);process.exit(3)})`;

(why ? test.skip : test)(`podman publishes a port through our bridge, host-local and portmap, and leaves no rule${why}`, async () => {
  await withSandbox(async (s) => {
    const d = s.dir;
    const net = uniqueName('pdn');
    const name = uniqueName('pdc');
    const rootfs = await busyboxTarball(join(d, 'image'));
    writeFileSync(
      join(d, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
        '[network]',
        'network_backend = "cni"',
        `cni_plugin_dirs = ["${PLUGIN_DIR}", "${GO_PLUGINS}"]`,
        `network_config_dir = "${d}/podman-net"`,
        '[engine]',
        'runtime = "runc"',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = "${d}/events.log"`,
        '',
      ].join('\n'),
    );
    const podman = `podman --root ${d}/storage --runroot ${d}/run --storage-driver vfs --log-level error`;
    // Podman reads network_config_dir; the empty /etc/cni/net.d only hides the machine's podman conflist.
    for (const sub of ['empty-netconf', 'podman-net']) mkdirSync(join(d, sub));
    const script = `${privateRoot(join(d, 'work'), join(d, 'empty-netconf'), PLUGIN_DIR)}
export CONTAINERS_CONF=${d}/containers.conf
# Our plugins log every process they start here: proof that podman ran ours.
export CNI_TS_TRACE=${d}/trace
trap '${podman} rm -f -t 0 ${name} >/dev/null 2>&1 || true; ${podman} network rm -f ${net} >/dev/null 2>&1 || true' EXIT
${podman} import ${rootfs} localhost/cnitest:latest >/dev/null
${podman} network create --subnet ${SUBNET} ${net} >/dev/null
echo "== conflist"; cat ${d}/podman-net/${net}.conflist; echo
${podman} run -d --name ${name} --network ${net} -p ${HOST_PORT}:80 localhost/cnitest:latest httpd -f -p 80 -h /www >/dev/null
echo "== fetch"
for i in $(seq 50); do out=$(${process.execPath} -e "${GET}" http://127.0.0.1:${HOST_PORT}/ 2>/dev/null) && break; sleep 0.1; done
echo "got: $out"
echo "rules while running: $(iptables-save -t nat | grep -c -- '--dport ${HOST_PORT}' || true)"
echo "== cache"; cat /var/lib/cni/results/${net}-*-eth0; echo
echo "== end cache"
${podman} rm -f -t 0 ${name} >/dev/null
echo "== after"
echo "rules: $(iptables-save -t nat | grep -c -- '--dport ${HOST_PORT}\\|198\\.51\\.100\\.\\(19[2-9]\\|2[0-5][0-9]\\)' || true)"
echo "reserved: $(ls /var/lib/cni/networks/${net} 2>/dev/null | grep -c '^[0-9]' || true)"
echo "veths: $(ip -o link show type veth | wc -l)"
`;
    const r = await sh('ip', ['netns', 'exec', s.hostNs, 'bash', '-c', script], { timeoutMs: 100_000 });
    if (process.env.CNI_TEST_VERBOSE) process.stderr.write(r.stdout + r.stderr);
    if (r.code !== 0) throw new Error(`podman run failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    const conflist = JSON.parse(r.stdout.split('== conflist')[1]!.split('== fetch')[0]!);
    // Podman's own conflist: our bridge (host-local) and portmap, plus the Go firewall and tuning.
    expect(conflist.plugins.map((p: { type: string }) => p.type)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    const [during = '', after = ''] = r.stdout.split('== fetch')[1]!.split('== after');
    // Podman's libcni wrote a result cache; our runtime must read it as its own (same layout and format).
    const goCache = JSON.parse(r.stdout.split('== cache')[1]!.split('== end cache')[0]!);
    const cacheDir = join(d, 'go-cache');
    mkdirSync(join(cacheDir, 'results'), { recursive: true });
    writeFileSync(join(cacheDir, 'results', `${net}-${goCache.containerId}-eth0`), JSON.stringify(goCache));
    expect(cachedAttachments(cacheDir)).toMatchObject([{ network: net, containerID: goCache.containerId, ifname: 'eth0' }]);
    expect(readCachedResult(cacheDir, net, { containerID: goCache.containerId, ifname: 'eth0' }, '0.4.0')).toMatchObject({ cniVersion: '0.4.0', ips: [{ address: expect.stringMatching(/^198\.51\.100\./) }] });
    const ours = cacheEntry(net, Buffer.from(goCache.config, 'base64'), { containerID: goCache.containerId, netns: goCache.netns ?? '', ifname: 'eth0', args: goCache.cniArgs, capabilityArgs: goCache.capabilityArgs }, goCache.result);
    expect(Object.keys(ours)).toEqual(Object.keys(goCache));
    expect(during).toContain('got: hello from busybox');
    expect(during).not.toContain('rules while running: 0');
    expect(after).toContain('rules: 0');
    expect(after).toContain('reserved: 0');
    expect(after).toContain('veths: 0');
    if (!IS_REFERENCE) expect(readFileSync(join(d, 'trace'), 'utf8')).toMatch(/ip .*-batch/);
  });
});

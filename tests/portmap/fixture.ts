/**
 * A portmap test bed in a sandbox: the host namespace gets an external client namespace on a veth link and a
 * "public" address (v4 + v6) on it; containers are wired by a bridge plugin (the Go reference by default,
 * CNI_TEST_BRIDGE_PLUGINS=dist switches to ours) and portmap (ours from dist/, or CNI_TEST_PLUGINS) is chained
 * after it. Tiny node servers answer with their container's name on TCP and UDP; they are killed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { must, netnsPath, PLUGIN_DIR, ROOT, uniqueName, type PluginResult, type Sandbox } from '../helpers/netns';

export const BRIDGE_DIR = process.env.CNI_TEST_BRIDGE_PLUGINS === 'dist' ? join(ROOT, 'dist') : (process.env.CNI_TEST_BRIDGE_PLUGINS ?? '/usr/lib/cni');

/** Addresses of this test file (documentation ranges, used nowhere else). */
export const NET = {
  subnet4: '203.0.113.0/26',
  subnet6: '2001:db8:7a::/64',
  host4: '198.51.100.7',
  host6: '2001:db8:7b::1',
  /** The host's side of the external link: a second local address. */
  link4: '203.0.113.129',
  ext4: '203.0.113.130',
  link6: '2001:db8:7c::1',
  ext6: '2001:db8:7c::2',
};

export type Backend = 'iptables' | 'nftables';
export interface Mapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

const SERVER = `
const net = require('net'), dgram = require('dgram');
const [name, tcp, udp] = process.argv.slice(1);
let pending = 0;
const ready = () => { if (--pending === 0) console.log('ready'); };
for (const p of tcp.split(',').filter(Boolean)) { pending++; net.createServer((s) => s.end(name + '\\n')).listen(+p, '::', ready); }
for (const p of udp.split(',').filter(Boolean)) {
  pending++;
  const s = dgram.createSocket('udp6');
  s.on('message', (m, r) => s.send(name, r.port, r.address));
  s.bind(+p, '::', ready);
}
setTimeout(() => process.exit(0), 110000);
`;

const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [proto, host, port, src, tries, wait] = process.argv.slice(1);
function once() {
  return new Promise((resolve) => {
    const t = setTimeout(() => done(null), +wait);
    let sock;
    const done = (v) => { clearTimeout(t); try { sock.destroy ? sock.destroy() : sock.close(); } catch {} resolve(v); };
    if (proto === 'tcp') {
      let buf = '';
      sock = net.connect({ host, port: +port, ...(+src ? { localPort: +src } : {}) });
      sock.on('data', (d) => (buf += d));
      sock.on('end', () => done(buf.trim() || null));
      sock.on('error', () => done(null));
    } else {
      sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
      sock.on('message', (m) => done(String(m)));
      sock.on('error', () => done(null));
      sock.bind(+src || 0, () => sock.send('hi', +port, host));
    }
  });
}
(async () => {
  for (let i = 0; i < +tries; i++) {
    const r = await once();
    if (r) { console.log(r); return; }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log('NONE');
})();
`;

export class PortmapBed {
  readonly network = uniqueName('pmn');
  readonly bridge = uniqueName('pmb');
  readonly ext: string;
  private readonly servers: ChildProcess[] = [];
  private readonly prev = new Map<string, unknown>();

  private constructor(
    readonly s: Sandbox,
    readonly backend: Backend,
    ext: string,
  ) {
    this.ext = ext;
  }

  static async create(s: Sandbox, backend: Backend): Promise<PortmapBed> {
    const ext = await s.container('pme');
    const host = (args: string[]) => must('ip', ['-n', s.hostNs, ...args]);
    await host(['link', 'add', 'pmext', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netnsPath(ext)]);
    await host(['link', 'set', 'pmext', 'up']);
    await host(['addr', 'add', `${NET.link4}/30`, 'dev', 'pmext']);
    await host(['addr', 'add', `${NET.link6}/64`, 'dev', 'pmext', 'nodad']);
    // The "public" address (there is no dummy module here): a second address on the same link.
    await host(['addr', 'add', `${NET.host4}/32`, 'dev', 'pmext']);
    await host(['addr', 'add', `${NET.host6}/128`, 'dev', 'pmext', 'nodad']);
    const inExt = (args: string[]) => must('ip', ['-n', ext, ...args]);
    await inExt(['link', 'set', 'eth0', 'up']);
    await inExt(['addr', 'add', `${NET.ext4}/30`, 'dev', 'eth0']);
    await inExt(['addr', 'add', `${NET.ext6}/64`, 'dev', 'eth0', 'nodad']);
    await inExt(['route', 'add', 'default', 'via', NET.link4]);
    await inExt(['-6', 'route', 'add', 'default', 'via', NET.link6]);
    await s.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    return new PortmapBed(s, backend, ext);
  }

  bridgeConf(): Record<string, unknown> {
    return {
      cniVersion: '1.0.0',
      name: this.network,
      type: 'bridge',
      bridge: this.bridge,
      isGateway: true,
      isDefaultGateway: true,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: NET.subnet4 }], [{ subnet: NET.subnet6 }]], dataDir: join(this.s.dir, 'ipam') },
    };
  }

  portmapConf(id: string, mappings: Mapping[], extra: Record<string, unknown> = {}, withPrev = true): Record<string, unknown> {
    return {
      cniVersion: '1.0.0',
      name: this.network,
      type: 'portmap',
      backend: this.backend,
      capabilities: { portMappings: true },
      runtimeConfig: { portMappings: mappings },
      ...(withPrev ? { prevResult: this.prev.get(id) } : {}),
      ...extra,
    };
  }

  /** A container namespace wired by the bridge plugin, with its prevResult remembered. */
  async container(id: string): Promise<{ ns: string; ip4: string; ip6: string }> {
    const ns = await this.s.container('pmc');
    const r = await this.s.plugin('bridge', { command: 'ADD', conf: this.bridgeConf(), containerID: id, netns: netnsPath(ns), path: BRIDGE_DIR }, BRIDGE_DIR);
    if (r.code !== 0) throw new Error(`bridge ADD failed: ${r.stdout} ${r.stderr}`);
    this.prev.set(id, r.json);
    const ips: string[] = r.json.ips.map((i: { address: string }) => i.address.split('/')[0]);
    return { ns, ip4: ips.find((i) => !i.includes(':'))!, ip6: ips.find((i) => i.includes(':'))! };
  }

  portmap(command: string, id: string, conf: Record<string, unknown>, netns?: string, env?: Record<string, string>): Promise<PluginResult> {
    return this.s.plugin('portmap', { command, conf, containerID: id, netns: netns ? netnsPath(netns) : '', ...(env ? { env } : {}) }, PLUGIN_DIR);
  }

  /** Starts the answering server in `ns`; it answers `name` on the given container ports. */
  async server(ns: string, name: string, tcp: number[], udp: number[]): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, name, tcp.join(','), udp.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.servers.push(child);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`server ${name} did not start`)), 20000);
      child.stdout!.on('data', (d) => {
        if (String(d).includes('ready')) clearTimeout(t), resolve();
      });
      child.on('exit', (c) => reject(new Error(`server ${name} exited with ${c}`)));
    });
  }

  /** Asks host:port from namespace `ns`; the answer (a server's name) or "NONE". Positive answers are retried a while. */
  async ask(ns: string, proto: 'tcp' | 'udp', host: string, port: number, opts: { srcPort?: number; expectNone?: boolean } = {}): Promise<string> {
    const tries = opts.expectNone ? 1 : 25;
    const r = await this.s.exec(process.execPath, ['-e', CLIENT, proto, host, String(port), String(opts.srcPort ?? 0), String(tries), '1000'], { ns });
    return r.stdout.trim();
  }

  /** Every nat rule of the host namespace, both families and our nft table (for assertions, not for the plugin). */
  async natRules(): Promise<string> {
    const parts = await Promise.all([
      this.s.exec('iptables-save', ['-t', 'nat']),
      this.s.exec('ip6tables-save', ['-t', 'nat']),
      this.s.exec('nft', ['list', 'ruleset']),
    ]);
    return parts.map((p) => p.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n')).join('\n');
  }

  async stop(): Promise<void> {
    for (const c of this.servers) c.kill('SIGKILL');
  }
}

/** Runs fn with a bed; servers are killed also when fn throws (the sandbox removes the namespaces). */
export async function withBed(s: Sandbox, backend: Backend, fn: (b: PortmapBed) => Promise<void>): Promise<void> {
  const b = await PortmapBed.create(s, backend);
  try {
    await fn(b);
  } finally {
    await b.stop();
  }
}

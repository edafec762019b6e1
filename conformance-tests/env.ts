/**
 * One case's world: a throwaway "host" namespace where plugins run (as a runtime runs them on a node),
 * container namespaces, an optional "outside" namespace behind the host, TCP servers, and what the suite needs
 * to look at afterwards (links, addresses, netfilter state). Everything is removed by `cleanup`, also when the
 * case fails or the run is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Sandbox, netnsPath, sh, uniqueName, type PluginResult, type PluginRun } from '../tests/helpers/netns';
import { check, show } from './harness';
import type { PluginSet } from './probe';

/** Addresses of the link between the host namespace and the outside one (TEST-NET-3). */
export const WORLD = { hostIp: '203.0.113.1', worldIp: '203.0.113.2', hostIp6: '2001:db8:ff::1', worldIp6: '2001:db8:ff::2' };

export interface Attachment {
  containerID: string;
  /** Path of the container netns; '' when the runtime no longer has one. */
  netns: string;
  ifname: string;
  /** The namespace name, for running commands in it. */
  ns: string;
}

export interface Reply {
  ok: boolean;
  /** What the server answered: "<label> <peer address>". */
  text: string;
}

const SERVER = `const net=require('net');const [host,port,label]=process.argv.slice(1);
net.createServer(s=>{s.on('error',()=>{});s.end(label+' '+s.remoteAddress.replace(/^::ffff:/,''))}).listen(+port,host,()=>console.log('ready'));`;
const CLIENT = `const net=require('net');const [host,port]=process.argv.slice(1);let out='';
const s=net.connect({host,port:+port,timeout:5000});s.on('data',d=>out+=d);s.on('end',()=>{console.log(out);process.exit(0)});
s.on('timeout',()=>{console.log('timeout');process.exit(1)});s.on('error',e=>{console.log(e.code||e.message);process.exit(1)});`;

const UDP_SERVER = `const d=require('dgram');const [host,port,label]=process.argv.slice(1);const s=d.createSocket(host.includes(':')?'udp6':'udp4');
s.on('message',(m,r)=>s.send(label+' '+r.address,r.port,r.address));s.bind(+port,host,()=>console.log('ready'));`;
const UDP_CLIENT = `const d=require('dgram');const [host,port,sport]=process.argv.slice(1);const s=d.createSocket('udp4');
setTimeout(()=>{console.log('timeout');process.exit(1)},5000);s.on('message',m=>{console.log(String(m));process.exit(0)});
s.bind(+sport,()=>s.send('x',+port,host));`;

const live = new Set<Env>();
/** Removes every live environment (SIGINT). */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((e) => e.cleanup()));
}

export class Env {
  private readonly servers: ChildProcess[] = [];
  private constructor(
    readonly sandbox: Sandbox,
    readonly set: PluginSet,
  ) {}

  static async create(set: PluginSet): Promise<Env> {
    const env = new Env(new Sandbox(), set);
    live.add(env);
    await env.sandbox.init();
    return env;
  }

  get dir(): string {
    return this.sandbox.dir;
  }
  get hostNs(): string {
    return this.sandbox.hostNs;
  }

  /** A fresh container namespace and the attachment a runtime would use for it. */
  async attachment(ifname = 'eth0'): Promise<Attachment> {
    const ns = await this.sandbox.container();
    return { containerID: uniqueName('conf-'), netns: netnsPath(ns), ifname, ns };
  }

  /** Deletes a container namespace, as a runtime does before a late DEL (cleanup tolerates it being gone). */
  async removeNetns(ns: string): Promise<void> {
    const r = await sh('ip', ['netns', 'del', ns]);
    if (r.code !== 0) throw new Error(`ip netns del ${ns}: ${r.stderr}`);
  }

  /** Runs a plugin in the host namespace with CNI_PATH set to the directory under test. */
  call(type: string, run: PluginRun): Promise<PluginResult> {
    return this.sandbox.plugin(type, run, this.set.dir);
  }

  /** Runs an attachment command and insists on success; returns the parsed stdout (ADD's result). */
  async ok(type: string, command: string, conf: unknown, att: Attachment, extra: Partial<PluginRun> = {}): Promise<any> {
    const r = await this.call(type, { command, conf, containerID: att.containerID, netns: att.netns, ifname: att.ifname, ...extra });
    check(r.code === 0, `${type} ${command} failed (exit ${r.code}): ${show(r.stdout.trim() || r.stderr.trim())}`);
    if (command === 'ADD') check(r.json && typeof r.json === 'object', `${type} ADD printed no JSON result: ${show(r.stdout)}`);
    return r.json;
  }

  exec(cmd: string, args: string[], ns = this.hostNs) {
    return this.sandbox.exec(cmd, args, { ns });
  }

  async mustExec(cmd: string, args: string[], ns = this.hostNs): Promise<string> {
    const r = await this.exec(cmd, args, ns);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} in ${ns} failed: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** `ip -j addr show` in a namespace. */
  async links(ns: string): Promise<Array<{ ifname: string; address?: string; addr_info: Array<{ local: string; prefixlen: number }> }>> {
    return JSON.parse(await this.mustExec('ip', ['-j', 'addr', 'show'], ns));
  }

  /** A namespace behind the host one (203.0.113.0/24, 2001:db8:ff::/64) with no route back to container subnets. */
  async world(): Promise<string> {
    const ns = await this.sandbox.container('ctw');
    const hostEnd = uniqueName('cw');
    await this.mustExec('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netnsPath(ns)]);
    await this.mustExec('ip', ['addr', 'add', `${WORLD.hostIp}/24`, 'dev', hostEnd]);
    await this.mustExec('ip', ['addr', 'add', `${WORLD.hostIp6}/64`, 'dev', hostEnd, 'nodad']);
    await this.mustExec('ip', ['link', 'set', hostEnd, 'up']);
    await this.mustExec('ip', ['addr', 'add', `${WORLD.worldIp}/24`, 'dev', 'eth0'], ns);
    await this.mustExec('ip', ['addr', 'add', `${WORLD.worldIp6}/64`, 'dev', 'eth0', 'nodad'], ns);
    await this.mustExec('ip', ['link', 'set', 'eth0', 'up'], ns);
    return ns;
  }

  /** Starts a TCP (or UDP) server in `ns` that answers "<label> <peer address>" (and closes). */
  async serve(ns: string, host: string, port: number, label: string, proto: 'tcp' | 'udp' = 'tcp'): Promise<void> {
    const script = proto === 'tcp' ? SERVER : UDP_SERVER;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, host, String(port), label], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.servers.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server in ${ns} on ${host}:${port} did not start: ${err}`)), 10_000);
      child.stdout!.on('data', (d) => {
        if (String(d).includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server in ${ns} on ${host}:${port} exited (${code}): ${err}`));
      });
    });
  }

  /** Connects from `ns` to host:port (5 s timeout). */
  async connect(ns: string, host: string, port: number): Promise<Reply> {
    const r = await sh('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, host, String(port)], { timeoutMs: 15_000 });
    return { ok: r.code === 0, text: (r.stdout.trim() || r.stderr.trim()).split('\n').pop() ?? '' };
  }

  /** Sends one UDP datagram from `ns` (source port `sport`) and waits 5 s for the answer. */
  async udp(ns: string, host: string, port: number, sport: number): Promise<Reply> {
    const r = await sh('ip', ['netns', 'exec', ns, process.execPath, '-e', UDP_CLIENT, host, String(port), String(sport)], { timeoutMs: 15_000 });
    return { ok: r.code === 0, text: (r.stdout.trim() || r.stderr.trim()).split('\n').pop() ?? '' };
  }

  /** The host namespace's whole netfilter state (cheap: the namespace is ours and small). */
  async netfilter(): Promise<string> {
    const parts = await Promise.all([
      this.exec('iptables-save', []),
      this.exec('ip6tables-save', []),
      this.exec('nft', ['list', 'ruleset']),
    ]);
    return parts.map((p) => p.stdout).join('\n');
  }

  async cleanup(): Promise<void> {
    if (!live.delete(this)) return;
    for (const s of this.servers) s.kill('SIGKILL');
    await this.sandbox.cleanup();
  }
}

/** Lines of a netfilter dump that mention an address (as a whole address) or a container ID. */
export function mentions(dump: string, needles: string[]): string[] {
  const pats = needles.map((n) => new RegExp(`(^|[^0-9a-fA-F:.])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^0-9a-fA-F:.])`));
  return dump.split('\n').filter((l) => pats.some((p) => p.test(l)));
}

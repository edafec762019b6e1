/**
 * A benchmark "host": a throwaway network namespace with an agent process living in it that execs plugins and
 * times them, as a runtime on the node would exec them. Each implementation gets a host of its own, so what one
 * leaves behind (its containers, veths, rules) does not slow another down: a real node runs one of them.
 *
 * Why an agent and not `ip netns exec HOST plugin` per call: that clones the mount namespace and remounts /sys each
 * time, ~3 ms idle and growing with the mounts on the machine (every `ip netns add` is one: +4 ms per call at
 * 1,500 namespaces): the harness's cost, not the plugin's. The agent pays it once. Namespaces created later by
 * `ip netns add` are visible to it (its mounts are a slave of the machine's).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** From the agent's spawn to the process's exit. */
  ms: number;
}

// Plain JavaScript for `node -e` in the host: one JSON request per line in, one JSON reply per line out.
const AGENT = `
const { spawn } = require('node:child_process');
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const req = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    const t = process.hrtime.bigint();
    const c = spawn(req.file, req.args, { env: req.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (x) => (out += x));
    c.stderr.on('data', (x) => (err += x));
    c.stdin.on('error', () => {});
    const reply = (code) => process.stdout.write(JSON.stringify({ id: req.id, code, stdout: out, stderr: err, ms: Number(process.hrtime.bigint() - t) / 1e6 }) + '\\n');
    c.on('error', (e) => { err += e.message; reply(127); });
    c.on('close', (code) => reply(code ?? 128));
    c.stdin.end(req.input);
  }
});
`;

export class Host {
  private readonly agent: ChildProcess;
  private seq = 0;
  private buf = '';
  private readonly pending = new Map<number, (r: Ran) => void>();

  private constructor(readonly name: string) {
    this.agent = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', AGENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.agent.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        const r = JSON.parse(this.buf.slice(0, i)) as Ran & { id: number };
        this.buf = this.buf.slice(i + 1);
        this.pending.get(r.id)?.(r);
        this.pending.delete(r.id);
      }
    });
  }

  /** Creates the namespace (loopback up) and its agent. */
  static create(name: string): Host {
    const made = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`ip netns add ${name}: ${made.stderr.trim()}`);
    spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return new Host(name);
  }

  /** Runs a program in the host with exactly `env`, timed by the agent. */
  run(file: string, args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<Ran> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.agent.stdin!.write(JSON.stringify({ id, file, args, env, input }) + '\n');
    });
  }

  /** Like `run` with the agent's PATH, failing when the program does. */
  async sh(file: string, args: string[], input = ''): Promise<string> {
    const r = await this.run(file, args, { PATH: process.env.PATH }, input);
    if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} in ${this.name} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Stops the agent and removes the namespace (and with it everything the plugins left in it). */
  remove(): void {
    this.agent.stdin!.end();
    this.agent.kill();
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

/**
 * A tiny HTTP server and client run inside a network namespace with `ip netns exec` and this machine's node,
 * so the demo and the runtime tests need no web server package. Both are bounded: the server exits after
 * `lifetimeMs`, the client gives up after `timeoutMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SERVER = `
const [port, text, lifetime] = process.argv.slice(1);
const srv = require('http').createServer((q, r) => r.end(text)).listen(Number(port), () => process.stdout.write('listening\\n'));
setTimeout(() => process.exit(0), Number(lifetime)).unref();
process.on('SIGTERM', () => process.exit(0));
`;

const CLIENT = `
const [url, timeout] = process.argv.slice(1);
const req = require('http').get(url, { timeout: Number(timeout) }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => { process.stdout.write(b); process.exit(r.statusCode === 200 ? 0 : 1); }); });
req.on('timeout', () => { process.stderr.write('timed out\\n'); process.exit(2); });
req.on('error', (e) => { process.stderr.write(e.message + '\\n'); process.exit(3); });
`;

export interface Server {
  child: ChildProcess;
  stop(): void;
}

/** Starts a server answering `text` on `port` inside namespace `ns`; resolves once it listens. */
export function serveIn(ns: string, port: number, text: string, lifetimeMs = 120_000): Promise<Server> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, String(port), text, String(lifetimeMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  };
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.once('data', () => resolve({ child, stop }));
    child.once('exit', (code) => reject(new Error(`the server in ${ns} exited (${code}) before listening: ${err.trim()}`)));
  });
}

/** GETs `url` from inside namespace `ns`; resolves with the body, or rejects with why it failed. */
export function fetchIn(ns: string, url: string, timeoutMs = 5000): Promise<string> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, url, String(timeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`GET ${url} in ${ns}: ${err.trim() || `exit ${code}`}`))));
  });
}

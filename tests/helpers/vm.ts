/**
 * Kernel features this machine may lack, and a VM that has them. Some cases (802.1Q devices, bridge VLAN
 * filtering) need kernel options that this project's CI kernel is built without; those test files run
 * themselves inside a throwaway qemu VM booted from Debian's own kernel, with this machine's root shared
 * read-only (tests/vm/run-in-vm.sh), and report each case's result from there.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ROOT } from './netns';

export const VM_RUNNER = process.env.CNI_TEST_VM_RUNNER ?? join(ROOT, 'tests', 'vm', 'run-in-vm.sh');

/** Whether this kernel has 802.1Q VLAN devices and bridge VLAN filtering (probed in a throwaway netns). */
export function kernelHasVlans(): boolean {
  const ns = `vlanprobe${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', ns]).status !== 0) return false;
  try {
    const ip = (...args: string[]) => spawnSync('ip', ['-n', ns, ...args]).status === 0;
    return ip('link', 'add', 'd0', 'type', 'dummy') && ip('link', 'add', 'link', 'd0', 'name', 'd0.5', 'type', 'vlan', 'id', '5') && ip('link', 'add', 'b0', 'type', 'bridge', 'vlan_filtering', '1');
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}

const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why the VM cannot run here, or undefined when it can. */
export function vmUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'the VM runner needs root';
  if (!existsSync(VM_RUNNER)) return `no VM runner at ${VM_RUNNER}`;
  if (!onPath('qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86)';
  if (!onPath('busybox')) return 'busybox is not installed (Debian package busybox-static)';
  return undefined;
}

/** Runs a shell command in the VM; `cpu` is a qemu CPU model (its default is every feature qemu emulates). */
export function vmExec(command: string, opts: { cpu?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(VM_RUNNER, [command], { env: { ...process.env, ...(opts.cpu ? { VM_CPU: opts.cpu } : {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export interface VmReport {
  /** Case title -> its outcome in the VM. */
  tests: Record<string, { status: string; failure?: string }>;
  /** What happened, for a case that did not run. */
  summary: string;
}

/**
 * Runs one test file with jest inside the VM (CNI_TEST_IN_VM=1 makes it run its cases natively) and returns
 * each case's outcome. Rejects only when the VM itself could not run.
 */
export async function runInVm(testFile: string): Promise<VmReport> {
  const share = mkdtempSync(join(tmpdir(), 'cni-vm-'));
  const report = join(share, 'report.json');
  const jest = join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
  const cmd = [
    `cd ${ROOT}`,
    `CNI_TEST_IN_VM=1 node ${jest} --ci -i --runTestsByPath ${relative(ROOT, testFile)} --json --outputFile=${report}`,
  ].join(' && ');
  try {
    const r = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      const child = spawn(VM_RUNNER, [cmd], { env: { ...process.env, VM_RW: share }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, out }));
    });
    if (!existsSync(report)) throw new Error(`the VM run left no jest report (exit ${r.code}):\n${r.out.slice(-4000)}`);
    const j = JSON.parse(readFileSync(report, 'utf8')) as {
      testResults: Array<{ message?: string; assertionResults: Array<{ title: string; status: string; failureMessages: string[] }> }>;
    };
    const tests: VmReport['tests'] = {};
    for (const file of j.testResults) {
      for (const a of file.assertionResults) tests[a.title] = { status: a.status, ...(a.failureMessages.length ? { failure: a.failureMessages.join('\n').slice(0, 4000) } : {}) };
    }
    const message = j.testResults.map((f) => f.message).filter(Boolean).join('\n');
    return { tests, summary: `exit ${r.code}${message ? `: ${message.slice(0, 2000)}` : ''}` };
  } finally {
    rmSync(share, { recursive: true, force: true });
  }
}

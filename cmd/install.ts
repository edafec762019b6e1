/**
 * cni-install: the Kubernetes node installer the DaemonSet runs. It installs the executables and a conflist for
 * the node's pod CIDRs, routes to the other nodes' pod CIDRs and one masquerade table, then keeps them in sync.
 * A failed pass (API down, no podCIDR yet) is logged and retried; it never writes a partial or guessed config.
 */
import { parseOptions, UsageError, USAGE } from '../lib/install/options';
import { Syncer } from '../lib/install/sync';

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} cni-install: ${msg}\n`);

export async function install(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let opts;
  try {
    opts = parseOptions(args, process.env, process.execPath);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`cni-install: ${e.message}\n${USAGE}`);
    return 2;
  }
  const syncer = new Syncer(opts, log);
  const pass = async () => {
    try {
      await syncer.pass();
      return true;
    } catch (e) {
      log(`sync failed, nothing written past the failing step; retrying${opts.once ? ' is up to the caller' : ` in ${opts.intervalMs / 1000} s`}: ${(e as Error).message}`);
      return false;
    }
  };
  if (opts.once) return (await pass()) ? 0 : 1;

  log(`node ${opts.nodeName ?? '(flags)'}: installing into ${opts.binDir} and ${opts.confDir}, re-sync every ${opts.intervalMs / 1000} s`);
  return new Promise<number>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const loop = async () => {
      // A failed pass retries sooner than the regular period, so a node that just got its podCIDR is ready fast.
      const ok = await pass();
      if (!stopped) timer = setTimeout(loop, ok ? opts.intervalMs : Math.min(opts.intervalMs, 5_000));
    };
    const stop = () => {
      stopped = true;
      clearTimeout(timer);
      log('stopping; the installed plugins and config stay for the node');
      resolve(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    void loop();
  });
}

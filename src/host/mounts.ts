// Mount and unmount through util-linux. Unmount is idempotent ("not mounted" is success),
// retries EBUSY a bounded number of times, and can fall back to a lazy detach.

import { nodeError } from '../errors.js';
import { commandFailed, mustRun, runTool, type RunResult } from './exec.js';

export interface MountArgs {
  type?: string;
  source: string;
  target: string;
  options?: string[];
  /** Propagation or bind flags such as --make-private, --bind, --rbind. */
  flags?: string[];
  cwd?: string;
}

export async function mount(args: MountArgs): Promise<RunResult> {
  const argv = [...(args.flags ?? [])];
  if (args.type) argv.push('-t', args.type);
  if (args.options?.length) argv.push('-o', args.options.join(','));
  argv.push(args.source, args.target);
  return mustRun('mount', argv, { cwd: args.cwd });
}

export async function runMount(argv: string[]): Promise<RunResult> {
  return runTool('mount', argv);
}

export type UnmountResult = 'unmounted' | 'not-mounted' | 'lazy';

const NOT_MOUNTED = /not mounted|no mount point specified|mountpoint not found|No such file or directory/;
const BUSY = /target is busy|device is busy|Device or resource busy/;

export async function unmount(target: string, { retries = 20, delayMs = 50, lazyFallback = false, recursive = false } = {}): Promise<UnmountResult> {
  for (let attempt = 0; ; attempt++) {
    // --recursive takes submounts (an rbind's) with it, deepest first, in one process.
    const result = await runTool('umount', recursive ? ['--recursive', target] : [target]);
    if (result.exitCode === 0) return 'unmounted';
    if (NOT_MOUNTED.test(result.stderr)) return 'not-mounted';
    if (!BUSY.test(result.stderr)) throw commandFailed(result);
    if (attempt >= retries) {
      if (!lazyFallback) {
        throw nodeError('E_BUSY', `${target} is still busy after ${retries} attempts`, {
          hint: 'a process still uses it (see `fuser -vm`); `strata node gc` cleans it up once it exits',
          detail: result.stderr,
        });
      }
      await mustRun('umount', recursive ? ['--lazy', '--recursive', target] : ['--lazy', target]);
      return 'lazy';
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** Unmount several targets with one umount(8) process; if that fails, one by one (with retries). */
export async function unmountAll(targets: string[]): Promise<void> {
  if (targets.length === 0) return;
  if (targets.length > 1 && (await runTool('umount', targets)).exitCode === 0) return;
  for (const target of targets) await unmount(target, { lazyFallback: true });
}

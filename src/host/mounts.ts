// Mount and unmount. Through the mount executor (mount-helper.ts: one process for all of a job's
// mounts) when it is built, else through util-linux, one process per call; both paths give the
// same mounts and the same results. Unmount is idempotent ("not mounted" is success), retries
// EBUSY a bounded number of times, and can fall back to a lazy detach.

import { nodeError } from '../errors.js';
import { commandFailed, runTool, type RunResult } from './exec.js';
import { MNT_DETACH, MS, mountExecutor, type MountHelper } from './mount-helper.js';
import { mountsUnder, readMountinfo } from './mountinfo.js';

export interface MountArgs {
  type?: string;
  source: string;
  target: string;
  options?: string[];
  /** Propagation or bind flags such as --make-private, --bind, --rbind. */
  flags?: string[];
  cwd?: string;
}

/** One mount(2) call: what util-linux would make of a mount(8) command line. */
export interface MountCall {
  source?: string;
  target: string;
  type?: string;
  flags: number;
  data?: string;
  cwd?: string;
}

const VFS_FLAGS: Record<string, number> = { ro: MS.RDONLY, rw: 0, nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, bind: MS.BIND };
const PROPAGATION: Record<string, number> = {
  '--make-private': MS.PRIVATE,
  '--make-rprivate': MS.PRIVATE | MS.REC,
  '--make-slave': MS.SLAVE,
  '--make-rslave': MS.SLAVE | MS.REC,
};

/**
 * The mount(2) calls for a mount(8) request, as util-linux 2.38 makes them: a bind first, then a
 * remount that applies its flags (a bind ignores them), then the propagation change. Pure.
 */
export function mountCalls(args: MountArgs): MountCall[] {
  let vfs = 0;
  const data: string[] = [];
  for (const option of args.options ?? []) {
    if (option in VFS_FLAGS) vfs |= VFS_FLAGS[option];
    else data.push(option);
  }
  const flags = args.flags ?? [];
  const unknown = flags.filter((flag) => !(flag in PROPAGATION) && flag !== '--bind' && flag !== '--rbind');
  if (unknown.length) throw nodeError('E_MOUNT_ARGS', `mount flags not supported by the mount helper: ${unknown.join(' ')}`);
  const calls: MountCall[] = [];
  if (flags.includes('--bind') || flags.includes('--rbind') || vfs & MS.BIND) {
    calls.push({ source: args.source, target: args.target, flags: MS.BIND | (flags.includes('--rbind') ? MS.REC : 0), cwd: args.cwd });
    const remount = vfs & ~MS.BIND;
    if (remount) calls.push({ target: args.target, flags: MS.REMOUNT | MS.BIND | remount, cwd: args.cwd });
  } else {
    calls.push({ source: args.source, target: args.target, type: args.type, flags: vfs, data: data.join(',') || undefined, cwd: args.cwd });
  }
  for (const flag of flags) if (flag in PROPAGATION) calls.push({ target: args.target, flags: PROPAGATION[flag], cwd: args.cwd });
  return calls;
}

const field = (value: string | undefined) => value ?? '-';

/** Mount; a failure is returned (exitCode != 0, stderr says why), not thrown. */
export async function tryMount(args: MountArgs): Promise<RunResult> {
  const helper = mountExecutor();
  if (!helper) return runTool('mount', mountArgv(args), { cwd: args.cwd });
  // Sent at once (the executor carries them out in order): a call after a failed one changes
  // nothing, since a remount or a propagation change needs the mount the failed call did not make
  // (EINVAL). The first failure is the answer.
  const runs = mountCalls(args).map((call) => helper.run(['mount', field(call.source), call.target, field(call.type), call.flags, field(call.data), field(call.cwd)]));
  for (const run of runs) run.catch(() => undefined);
  let result: RunResult | undefined;
  for (const run of runs) {
    result = await run;
    if (result.exitCode !== 0) return { ...result, stderr: `mount ${args.target}: ${result.stderr}` };
  }
  return result!;
}

export async function mount(args: MountArgs): Promise<RunResult> {
  const result = await tryMount(args);
  if (result.exitCode !== 0) throw commandFailed(result);
  return result;
}

/**
 * Mount a filesystem image file read-only through a loop device with autoclear, reusing a loop
 * device already bound to the file (one loop device per layer file on the node). Failures are
 * returned; a stderr mentioning "loop device" means no loop device could be had.
 */
export async function tryMountImage(args: { file: string; target: string; type: string; options: string[]; directIo?: boolean }): Promise<RunResult> {
  const helper = mountExecutor();
  if (!helper) return runTool('mount', ['-t', args.type, '-o', ['loop', 'ro', ...args.options].join(','), args.file, args.target]);
  const [call] = mountCalls({ source: args.file, target: args.target, type: args.type, options: ['ro', ...args.options] });
  return helper.run(['loop', args.file, args.target, args.type, call.flags, field(call.data), args.directIo ? 1 : 0]);
}

function mountArgv(args: MountArgs): string[] {
  const argv = [...(args.flags ?? [])];
  if (args.type) argv.push('-t', args.type);
  if (args.options?.length) argv.push('-o', args.options.join(','));
  argv.push(args.source, args.target);
  return argv;
}

export type UnmountResult = 'unmounted' | 'not-mounted' | 'lazy';

// The helper answers with an errno, as the kernel does: "already unmounted" is EINVAL (not a mount
// point) or ENOENT (gone), busy is EBUSY — decided on the errno, as containerd's mount manager
// does. umount(8) (no helper built) says the same only in words.
const NOT_MOUNTED_ERRNOS = new Set(['EINVAL', 'ENOENT']);
const NOT_MOUNTED_TEXT = /not mounted|no mount point specified|mountpoint not found|No such file or directory/;
const BUSY_TEXT = /target is busy|device is busy|Device or resource busy/;

type UnmountAttempt = RunResult & { reply?: { ok: boolean; value: string } };
const notMounted = (result: UnmountAttempt) => (result.reply ? NOT_MOUNTED_ERRNOS.has(result.reply.value) : NOT_MOUNTED_TEXT.test(result.stderr));
const busy = (result: UnmountAttempt) => (result.reply ? result.reply.value === 'EBUSY' : BUSY_TEXT.test(result.stderr));

/** One unmount attempt: through the helper (a recursive one deepest first) or umount(8). */
async function unmountOnce(target: string, recursive: boolean, lazy: boolean): Promise<UnmountAttempt> {
  const helper = mountExecutor();
  if (!helper) return runTool('umount', [...(lazy ? ['--lazy'] : []), ...(recursive ? ['--recursive'] : []), target]);
  // A lazy detach takes the submounts with it.
  if (lazy || !recursive) return helper.run(['umount', target, lazy ? MNT_DETACH : 0]);
  const targets = mountsUnder(readMountinfo(target), target).map((entry) => entry.mountPoint);
  if (targets.length === 0) return helper.run(['umount', target, 0]);
  return unmountEach(helper, targets);
}

async function unmountEach(helper: MountHelper, targets: string[]): Promise<UnmountAttempt> {
  let result!: UnmountAttempt;
  for (const [index, target] of targets.entries()) {
    result = await helper.run(['umount', target, 0]);
    // A submount already gone (taken by a parent's teardown) is fine; the last one decides.
    if (result.exitCode !== 0 && !(notMounted(result) && index < targets.length - 1)) return result;
  }
  return result;
}

export async function unmount(target: string, { retries = 20, delayMs = 50, lazyFallback = false, recursive = false } = {}): Promise<UnmountResult> {
  for (let attempt = 0; ; attempt++) {
    // --recursive takes submounts (an rbind's) with it, deepest first.
    const result = await unmountOnce(target, recursive, false);
    if (result.exitCode === 0) return 'unmounted';
    if (notMounted(result)) return 'not-mounted';
    if (!busy(result)) throw commandFailed(result);
    if (attempt >= retries) {
      if (!lazyFallback) {
        throw nodeError('E_BUSY', `${target} is still busy after ${retries} attempts`, {
          hint: 'a process still uses it (see `fuser -vm`); `strata node gc` cleans it up once it exits',
          detail: result.stderr,
        });
      }
      const lazy = await unmountOnce(target, recursive, true);
      if (lazy.exitCode !== 0) throw commandFailed(lazy);
      return 'lazy';
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

/** Unmount several targets (one umount(8) process, or the helper); if that fails, one by one (with retries). */
export async function unmountAll(targets: string[]): Promise<void> {
  if (targets.length === 0) return;
  const helper = mountExecutor();
  if (helper) {
    // Sent at once (a 40-layer image's layers): the executor carries them out in order, and this
    // process waits once instead of once per target. What failed is retried one by one.
    const results = await Promise.all(targets.map((target) => helper.run(['umount', target, 0])));
    for (const [index, result] of results.entries()) if (result.exitCode !== 0) await unmount(targets[index], { lazyFallback: true });
    return;
  }
  if (targets.length > 1 && (await runTool('umount', targets)).exitCode === 0) return;
  for (const target of targets) await unmount(target, { lazyFallback: true });
}

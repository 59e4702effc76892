// Teardown: replay a job's journal backwards and undo each step. Every undo treats "already gone"
// as success, so teardown can be run any number of times, after a prolog killed at any point, or
// with no prolog at all. At the end, mountinfo is the judge: nothing may remain mounted under the
// job's directory before it is removed. Every unmount is verified by mount id (unmount.ts): the
// mount points below the rootfs are in a tree the job's user controls. All side effects go through
// `TeardownOps` (tests pass a recording fake).

import { existsSync, lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import type { Config, LayerCachePolicy } from '../../config/types.js';
import { errnoCode, nodeError } from '../../errors.js';
import { entriesWithin, mountsUnder, readMountinfo, type MountEntry } from '../../host/mountinfo.js';
import { withNodeLock } from '../../host/node-lock.js';
import { removeTree } from '../../host/remove-tree.js';
import { releaseUnusedLayers } from '../layers/stack.js';
import { RuntimePaths } from '../paths.js';
import { faultPoint, killIfFault } from '../../test-switches.js';
import { readJournal, type JournalRecord } from './records.js';
import { unmountJobMount, unmountOrder, type JobUnmountResult, type UnmountOptions } from './unmount.js';

export interface TeardownResult {
  /** Nothing was there to tear down. */
  nothing: boolean;
  steps: number;
  /** Mounts that were busy and lazily detached (their loop devices go when the last user exits). */
  lazy: string[];
  /** Job data a user process kept changing, left for `strata node gc` (the epilog does not fail). */
  leftBehind: string[];
}

/** Every side effect of tearing a job down. */
export interface TeardownOps {
  readJournal(path: string): JournalRecord[];
  isLink(path: string): boolean;
  exists(path: string): boolean;
  removeFile(path: string): void;
  removeDir(path: string): void;
  /** Recursively, as root, in a tree a user may be changing (host/remove-tree.ts). */
  removeTree(path: string): Promise<void>;
  /** The mount table: at least every mount at or below `within`. */
  mounts(within: string): MountEntry[];
  /** Unmount one mount of the job (below `base`), verified by id. */
  unmount(base: string, entry: MountEntry, options?: UnmountOptions): Promise<JobUnmountResult>;
  underNodeLock<T>(lockFile: string, action: () => Promise<T>): Promise<T>;
  releaseUnusedLayers(runtime: RuntimePaths, policy: LayerCachePolicy): Promise<void>;
}

type Note = (target: string, outcome: JobUnmountResult) => void;
type JobPaths = ReturnType<RuntimePaths['job']>;

/** `timings`, if given, is filled in with the time (ms) each kind of undo took. */
export async function teardownJob(jobId: string, config: Config, timings?: Record<string, number>, ops: TeardownOps = hostTeardownOps): Promise<TeardownResult> {
  const runtime = new RuntimePaths(config.runtimeDir);
  const job = runtime.job(jobId);
  // The journal says what to unmount and delete, as root: never read one through a planted link.
  refuseLink(ops, job.dir);
  refuseLink(ops, job.journal);
  const records = ops.readJournal(job.journal);
  const result: TeardownResult = { nothing: records.length === 0 && !ops.exists(job.dir), steps: 0, lazy: [], leftBehind: [] };
  const note: Note = (target, outcome) => {
    if (outcome === 'lazy') result.lazy.push(target);
  };
  const undoer = new Undo(ops, job, runtime, config.layers.cache, note, (path) => result.leftBehind.push(path));

  // Nobody enters a rootfs that is going away.
  ops.removeFile(job.entry);
  // STRATA_FAULT_KILL_EPILOG=N:before|after: the kill tests' SIGKILL around undo step N (1-based,
  // in teardown order, i.e. the journal read backwards).
  const fault = faultPoint('STRATA_FAULT_KILL_EPILOG');
  for (const [index, record] of [...records].reverse().entries()) {
    killIfFault(fault, index + 1, 'before');
    const started = performance.now();
    await undoer.undo(record);
    if (timings) timings[`undo ${record.op}`] = (timings[`undo ${record.op}`] ?? 0) + (performance.now() - started);
    killIfFault(fault, index + 1, 'after');
    result.steps++;
  }

  // Anything still mounted below the job dir (a step the journal never recorded, a journal from
  // another strata version) goes too, deepest first.
  await undoer.unmountAll(job.dir, true);
  // mountinfo read afresh is the judge; what the kept table missed gets one more pass.
  let left = mountsUnder(ops.mounts(job.dir), job.dir);
  if (left.length) {
    undoer.forgetTable();
    await undoer.unmountAll(job.dir, true);
    left = mountsUnder(ops.mounts(job.dir), job.dir);
  }
  if (left.length) {
    throw nodeError('E_TEARDOWN', `job ${jobId}: ${left.length} mounts remain under ${job.dir}`, { detail: left.map((entry) => entry.mountPoint).join('\n') });
  }
  await ops.removeTree(job.dir);
  // Without a journal entry for the overlay (journal lost, or the prolog never got that far) a
  // layer mounted for this job may still be there: sweep what no overlay uses.
  if (!records.some((record) => record.op === 'rootfs') && ops.exists(runtime.layerDir)) {
    await ops.underNodeLock(runtime.lockFile, () => ops.releaseUnusedLayers(runtime, config.layers.cache));
  }
  return result;
}

class Undo {
  constructor(
    private readonly ops: TeardownOps,
    private readonly job: JobPaths,
    private readonly runtime: RuntimePaths,
    private readonly policy: LayerCachePolicy,
    private readonly note: Note,
    private readonly leaveBehind: (path: string) => void,
  ) {}

  async undo(record: JournalRecord) {
    const { ops, job } = this;
    switch (record.op) {
      case 'entry':
        ops.removeFile(record.path);
        return;
      case 'rootfs':
        // Whatever is mounted on or in the rootfs goes first, then the overlay, then unused layers.
        await this.unmountAll(job.rootfs, false);
        await ops.underNodeLock(this.runtime.lockFile, async () => {
          for (const entry of this.at(record.target).filter((mounted) => mounted.fsType === 'overlay')) await this.unmountOne(entry);
          // Remap-root's idmapped clones keep the layers' superblocks (and loop devices) alive.
          if (record.idmap) await this.unmountAll(record.idmap.dir, false);
          await ops.releaseUnusedLayers(this.runtime, this.policy);
        });
        return;
      case 'mkdir':
        ops.removeDir(record.path);
        return;
      case 'upper-tmpfs':
        for (const entry of this.at(record.target)) await this.unmountOne(entry);
        ops.removeDir(record.target);
        return;
      case 'tmp-tmpfs':
        // The job's /tmp: its bind in the rootfs went with the rootfs' binds; then the tmpfs itself.
        await this.unmountAll(job.rootfs, false);
        for (const entry of this.at(record.target)) await this.unmountOne(entry);
        return;
      case 'job-files':
        // Plain files in the job's directory, removed with it.
        return;
      case 'slurm-client':
        // Shared with the node's other jobs (runtime/slurm-client/plan.ts); a journal of an older
        // strata had them in the job's directory, removed with it.
        return;
      case 'upper-dir':
        // Never recursive-delete something that might still be mounted.
        // A user process still writing there must not make the epilog fail (and drain the node):
        // what is left is the job's own data, which `strata node gc` removes later.
        if (mountsUnder(ops.mounts(record.path), record.path).length === 0) await ops.removeTree(record.path).catch(() => this.leaveBehind(record.path));
        return;
      case 'begin':
        return;
      default:
        // bind, readonly, a version-1 `mountpoints`, or an op of a newer strata: whatever it
        // mounted is in or on the rootfs.
        await this.unmountAll(job.rootfs, false);
        return;
    }
  }

  /**
   * The mounts below the job's directory, read once and then kept in step with this teardown's
   * own unmounts: there nothing else mounts or unmounts meanwhile (requests of one job run one at
   * a time), and on a node running many jobs each read costs milliseconds. Anything unexpected (a
   * lazy detach, a mount that would not go) drops it, and the end of the teardown reads afresh.
   */
  private table?: MountEntry[];
  private mounts(): MountEntry[] {
    return (this.table ??= entriesWithin(this.ops.mounts(this.job.dir), this.job.dir));
  }
  forgetTable() {
    this.table = undefined;
  }

  /** Mounts at `path`, the one on top first. */
  private at(path: string) {
    return this.mounts().filter((entry) => entry.mountPoint === path).reverse();
  }

  private async unmountOne(entry: MountEntry, options?: UnmountOptions): Promise<boolean> {
    const outcome = await this.ops.unmount(this.job.dir, entry, options);
    this.note(entry.mountPoint, outcome);
    if (outcome === 'unmounted' || outcome === 'not-mounted') this.table = this.table?.filter((mounted) => mounted.id !== entry.id);
    else this.forgetTable();
    return outcome !== 'unreachable';
  }

  /**
   * Every mount below `path` (and at it, with `includeSelf`; else only those stacked on it). A
   * mount a user made unreachable by its path goes with a lazy detach of the rootfs overlay.
   */
  async unmountAll(path: string, includeSelf: boolean) {
    // Sent all at once: the executor carries requests out in the order sent (deepest first), so
    // this only saves a round trip per mount. A busy one is retried while the others go on.
    const outcomes = await Promise.all(unmountOrder(this.mounts(), path, includeSelf).map((entry) => this.unmountOne(entry)));
    if (outcomes.every(Boolean)) return;
    const table = this.mounts();
    const overlay = table.find((entry) => entry.mountPoint === this.job.rootfs && !table.some((parent) => parent.id === entry.parentId && parent.mountPoint === this.job.rootfs));
    if (overlay) await this.unmountOne(overlay, { retries: -1 });
  }
}

function refuseLink(ops: TeardownOps, path: string) {
  if (ops.isLink(path)) {
    throw nodeError('E_RUNTIME_TAMPERED', `${path} is a symbolic link, which strata never creates and does not follow`, {
      hint: 'something other than strata wrote into the runtime dir: inspect it, remove it by hand, and check the node',
    });
  }
}

const ignoring = (code: string, action: () => void) => {
  try {
    action();
  } catch (error) {
    if (errnoCode(error) !== code) throw error;
  }
};

/** The real host. */
export const hostTeardownOps: TeardownOps = {
  readJournal,
  isLink: (path) => lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false,
  exists: existsSync,
  removeFile: (path) => ignoring('ENOENT', () => unlinkSync(path)),
  removeDir: (path) => ignoring('ENOENT', () => rmdirSync(path)),
  removeTree,
  mounts: readMountinfo,
  unmount: unmountJobMount,
  underNodeLock: (lockFile, action) => withNodeLock(lockFile, action),
  releaseUnusedLayers,
};


// Teardown: replay a job's journal backwards and undo each step. Every undo treats "already gone"
// as success, so teardown can be run any number of times, after a prolog killed at any point, or
// with no prolog at all. At the end, mountinfo is the judge: nothing may remain mounted under the
// job's directory before it is removed. Every unmount is verified by mount id (job-unmount.ts):
// the mount points below the rootfs are in a tree the job's user controls.

import { existsSync, lstatSync, rmSync, rmdirSync, unlinkSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import { errnoCode, nodeError } from '../../errors.js';
import { mountsUnder, readMountinfo } from '../../host/mountinfo.js';
import type { UnmountResult } from '../../host/mounts.js';
import { withNodeLock } from '../../host/node-lock.js';
import { faultPoint, killIfFault } from './fault.js';
import { unmountJobMount, unmountJobMounts } from './unmount.js';
import { releaseUnusedLayers, unmountRootfs } from '../layers/stack.js';
import { RuntimePaths } from '../paths.js';
import { readJournal, type JournalRecord } from './records.js';

export interface TeardownResult {
  /** Nothing was there to tear down. */
  nothing: boolean;
  steps: number;
  /** Mounts that were busy and lazily detached (their loop devices go when the last user exits). */
  lazy: string[];
}

type Note = (target: string, outcome: UnmountResult) => void;

/** `timings`, if given, is filled in with the time (ms) each kind of undo took. */
export async function teardownJob(jobId: string, config: Config, timings?: Record<string, number>): Promise<TeardownResult> {
  const runtime = new RuntimePaths(config.runtimeDir);
  const job = runtime.job(jobId);
  // The journal says what to unmount and delete, as root: never read one through a planted link.
  refuseLink(job.dir);
  refuseLink(job.journal);
  const records = readJournal(job.journal);
  const result: TeardownResult = { nothing: records.length === 0 && !existsSync(job.dir), steps: 0, lazy: [] };
  const note: Note = (target, outcome) => {
    if (outcome === 'lazy') result.lazy.push(target);
  };

  // Nobody enters a rootfs that is going away.
  removeFile(job.entry);
  // STRATA_FAULT_KILL_EPILOG=N:before|after: the kill tests' SIGKILL around undo step N (1-based,
  // in teardown order, i.e. the journal read backwards).
  const fault = faultPoint('STRATA_FAULT_KILL_EPILOG');
  for (const [index, record] of [...records].reverse().entries()) {
    killIfFault(fault, index + 1, 'before');
    const started = performance.now();
    await undo(record, job, runtime, config, note);
    if (timings) timings[`undo ${record.op}`] = (timings[`undo ${record.op}`] ?? 0) + (performance.now() - started);
    killIfFault(fault, index + 1, 'after');
    result.steps++;
  }

  // Anything still mounted below the job dir (a step the journal never recorded, a journal from
  // another strata version) goes too, deepest first.
  const unreachable = await unmountJobMounts(job.dir, job.dir, true, note);
  if (unreachable.length) await detachRootfs(job.dir, job.rootfs, note);
  const left = mountsUnder(readMountinfo(), job.dir);
  if (left.length) {
    throw nodeError('E_TEARDOWN', `job ${jobId}: ${left.length} mounts remain under ${job.dir}`, { detail: left.map((entry) => entry.mountPoint).join('\n') });
  }
  rmSync(job.dir, { recursive: true, force: true });
  // Without a journal entry for the overlay (journal lost, or the prolog never got that far) a
  // layer mounted for this job may still be there: sweep what no overlay uses.
  if (!records.some((record) => record.op === 'rootfs') && existsSync(runtime.layerDir)) {
    await withNodeLock(runtime.lockFile, () => releaseUnusedLayers(runtime, config.layers.cache));
  }
  return result;
}

type JobPaths = ReturnType<RuntimePaths['job']>;

async function undo(record: JournalRecord, job: JobPaths, runtime: RuntimePaths, config: Config, note: Note) {
  switch (record.op) {
    case 'entry':
      removeFile(record.path);
      return;
    case 'rootfs':
      // Whatever is mounted on or in the rootfs goes first, then the overlay, then unused layers.
      await unmountBelowRootfs(job, note);
      note(record.target, await withNodeLock(runtime.lockFile, () => unmountRootfs(record, job.dir, runtime, config.layers.cache)));
      return;
    case 'mkdir':
      removeDir(record.path);
      return;
    case 'upper-tmpfs':
      for (const entry of readMountinfo().filter((mounted) => mounted.mountPoint === record.target).reverse()) {
        const outcome = await unmountJobMount(job.dir, entry);
        if (outcome !== 'unreachable') note(record.target, outcome);
      }
      removeDir(record.target);
      return;
    case 'tmp-tmpfs':
      // The job's /tmp: its bind in the rootfs went with the rootfs' binds; then the tmpfs itself.
      await unmountBelowRootfs(job, note);
      for (const entry of readMountinfo().filter((mounted) => mounted.mountPoint === record.target).reverse()) {
        const outcome = await unmountJobMount(job.dir, entry);
        if (outcome !== 'unreachable') note(record.target, outcome);
      }
      return;
    case 'job-files':
      // Plain files in the job's directory, removed with it.
      return;
    case 'upper-dir':
      // Never recursive-delete something that might still be mounted.
      if (mountsUnder(readMountinfo(), record.path).length === 0) rmSync(record.path, { recursive: true, force: true });
      return;
    case 'begin':
      return;
    default:
      // bind, readonly, a version-1 `mountpoints`, or an op of a newer strata: whatever it
      // mounted is in or on the rootfs.
      await unmountBelowRootfs(job, note);
      return;
  }
}

/** Every mount in the rootfs and stacked on it; the overlay itself stays (its layers need the lock). */
async function unmountBelowRootfs(job: JobPaths, note: Note) {
  const unreachable = await unmountJobMounts(job.dir, job.rootfs, false, note);
  if (unreachable.length) await detachRootfs(job.dir, job.rootfs, note);
}

/** Last resort for mounts a user made unreachable by path: detach the rootfs with all below it. */
async function detachRootfs(jobDir: string, rootfs: string, note: Note) {
  const table = readMountinfo();
  const overlay = table.find((entry) => entry.mountPoint === rootfs && !table.some((parent) => parent.id === entry.parentId && parent.mountPoint === rootfs));
  if (!overlay) return;
  const outcome = await unmountJobMount(jobDir, overlay, { retries: -1 });
  if (outcome !== 'unreachable') note(rootfs, outcome);
}

function removeFile(path: string) {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

function removeDir(path: string) {
  try {
    rmdirSync(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

function refuseLink(path: string) {
  if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) {
    throw nodeError('E_RUNTIME_TAMPERED', `${path} is a symbolic link, which strata never creates and does not follow`, {
      hint: 'something other than strata wrote into the runtime dir: inspect it, remove it by hand, and check the node',
    });
  }
}

// Teardown: replay a job's journal backwards and undo each step. Every undo treats "already gone"
// as success, so teardown can be run any number of times, after a prolog killed at any point, or
// with no prolog at all. At the end, mountinfo is the judge: nothing may remain mounted under the
// job's directories before they are removed.

import { existsSync, rmSync, rmdirSync, unlinkSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { errnoCode, nodeError } from '../errors.js';
import { mountsUnder, readMountinfo } from '../host/mountinfo.js';
import { unmount, type UnmountResult } from '../host/mounts.js';
import { withNodeLock } from '../host/node-lock.js';
import { faultPoint, killIfFault } from './fault.js';
import { readJournal, type JournalRecord } from './journal.js';
import { releaseUnusedLayers, unmountRootfs } from './layers.js';
import { RuntimePaths } from './paths.js';

export interface TeardownResult {
  /** Nothing was there to tear down. */
  nothing: boolean;
  steps: number;
  /** Mounts that were busy and lazily detached (their loop devices go when the last user exits). */
  lazy: string[];
}

export async function teardownJob(jobId: string, config: Config): Promise<TeardownResult> {
  const runtime = new RuntimePaths(config.runtimeDir);
  const job = runtime.job(jobId);
  const records = readJournal(job.journal);
  const result: TeardownResult = { nothing: records.length === 0 && !existsSync(job.dir), steps: 0, lazy: [] };
  const note = (target: string, outcome: UnmountResult) => {
    if (outcome === 'lazy') result.lazy.push(target);
  };

  // Nobody enters a rootfs that is going away.
  removeFile(job.entry);
  // STRATA_FAULT_KILL_EPILOG=N:before|after: the kill tests' SIGKILL around undo step N (1-based,
  // in teardown order, i.e. the journal read backwards).
  const fault = faultPoint('STRATA_FAULT_KILL_EPILOG');
  for (const [index, record] of [...records].reverse().entries()) {
    killIfFault(fault, index + 1, 'before');
    await undo(record, runtime, config, note);
    killIfFault(fault, index + 1, 'after');
    result.steps++;
  }

  // Anything still mounted below the job dir (a step the journal never recorded, e.g. a bind made
  // by hand) goes too, deepest first.
  for (const entry of mountsUnder(readMountinfo(), job.dir)) note(entry.mountPoint, await unmount(entry.mountPoint, { lazyFallback: true }));
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

async function undo(record: JournalRecord, runtime: RuntimePaths, config: Config, note: (target: string, outcome: UnmountResult) => void) {
  switch (record.op) {
    case 'entry':
      removeFile(record.path);
      return;
    case 'bind':
      // An rbind brought submounts along; they go with it.
      if (mountsUnder(readMountinfo(), record.target).length) note(record.target, await unmount(record.target, { lazyFallback: true, recursive: true }));
      return;
    case 'readonly': {
      // The rootfs is mounted twice here (overlay, then the read-only bind on top).
      const stacked = readMountinfo().filter((entry) => entry.mountPoint === record.target);
      if (stacked.length >= 2) note(record.target, await unmount(record.target, { lazyFallback: true }));
      return;
    }
    case 'rootfs':
      note(record.target, await withNodeLock(runtime.lockFile, () => unmountRootfs(record, runtime, config.layers.cache)));
      return;
    case 'mkdir':
      removeDir(record.path);
      return;
    case 'upper-tmpfs':
      note(record.target, await unmount(record.target, { lazyFallback: true }));
      removeDir(record.target);
      return;
    case 'upper-dir':
      // Never recursive-delete something that might still be mounted.
      if (mountsUnder(readMountinfo(), record.path).length === 0) rmSync(record.path, { recursive: true, force: true });
      return;
    case 'begin':
    case 'mountpoints':
      return;
  }
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

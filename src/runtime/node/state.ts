// What strata has on this node, and what of it is stale: layer mounts with the jobs using each,
// each job's rootfs, upper and journal state, and the loop devices backing layer files.
//
// `inventoryNode(snapshot)` is pure: it judges a snapshot (mountinfo, loop devices, the runtime
// dir's job directories and journals) and never looks at the machine, so it is unit-tested on
// recorded mountinfo texts. `readNodeSnapshot(config)` takes the snapshot (reads only).
//
// "Stale" is what no running prolog or epilog would leave behind on its own:
//   journal-without-mounts   a job whose journal says it is (being) set up, but nothing is mounted
//                            (the node rebooted, or the mount namespace holding it is gone)
//   mounts-without-journal   mounts under a job directory that has no journal
//   unused-layer             a layer mount no job overlay lists (with `layers.cache: release`)
//   empty-layer-dir          a layer mount point with nothing mounted on it
//   loop-without-mount       a loop device on a store file, without autoclear, mounted nowhere
//                            here: it leaks until detached
//   loop-held-elsewhere      a loop device on a store file with autoclear, not mounted here: a
//                            lazily detached mount (a process still holds the rootfs) or another
//                            mount namespace; the kernel frees it when its last user goes
//   upper-without-job        an upper directory on node-local disk (upper.disk_path) whose job
//                            directory is gone (e.g. the runtime tmpfs was lost in a reboot)
//   foreign-entry            something in the runtime dir strata did not create (a symlink, a
//                            file, a bad name); never followed, never removed automatically
// Long (over ~300 lines): reading the node and judging it are two halves of one snapshot type;
// the judging half is pure and unit-tested on its own.

import { lstatSync, readFileSync, readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, LayerCachePolicy } from '../../config/types.js';
import { errnoCode } from '../../errors.js';
import { listLoopDevices, type LoopDevice } from '../../host/loop.js';
import { mountsUnder, readMountinfo, type MountEntry, lowerIdsOf } from '../../host/mountinfo.js';
import { readJournal, type BeginRecord, type JournalRecord } from '../job/records.js';
import { RuntimePaths, checkJobId } from '../paths.js';
import { isWithin } from '../../path-within.js';

export interface UpperUsage {
  usedBytes: number;
  /** The cap (tmpfs size); absent for an upper on node-local disk. */
  sizeBytes?: number;
}

export interface JobSnapshot {
  id: string;
  records: JournalRecord[];
  hasEntry: boolean;
  /** First line of the job's `error` file (a user-caused set-up failure). */
  error?: string;
  upperUsage?: UpperUsage;
}

export interface NodeSnapshot {
  runtimeDir: string;
  storePath: string;
  cachePolicy: LayerCachePolicy;
  mounts: MountEntry[];
  loops: LoopDevice[];
  jobs: JobSnapshot[];
  /** Names of the directories under <runtime>/l. */
  layerDirs: string[];
  /** Job upper directories on node-local disk (names under upper.disk_path). */
  diskUppers: { dir: string; names: string[] };
  /** Paths in the runtime dir that are not strata's (symlinks, files, bad names). */
  foreign: string[];
}

/** ready: entry.json written; setting-up: journal but no entry.json; failed: only a user error; empty: nothing. */
export type JobPhase = 'ready' | 'setting-up' | 'failed' | 'empty';

export interface JobState {
  id: string;
  phase: JobPhase;
  image?: string;
  uid?: number;
  startedAt?: string;
  journalSteps: number;
  rootfs: { path: string; mounted: boolean };
  upper?: { path: string; backing: 'tmpfs' | 'disk'; mounted: boolean } & Partial<UpperUsage>;
  /** Layer ids the job's overlay stacks, top first. */
  layers: string[];
  /** Every mount point at or below the job directory. */
  mounts: string[];
  error?: string;
}

export interface LayerState {
  id: string;
  mountPoint: string;
  mounted: boolean;
  device?: string;
  file?: string;
  /** Jobs whose overlay lists this layer. */
  jobs: string[];
}

export interface LoopState {
  device: string;
  file: string;
  autoclear: boolean;
  deleted: boolean;
  /** Mount points here using the device. */
  mountedAt: string[];
}

export type StaleKind =
  | 'journal-without-mounts'
  | 'mounts-without-journal'
  | 'unused-layer'
  | 'empty-layer-dir'
  | 'loop-without-mount'
  | 'loop-held-elsewhere'
  | 'upper-without-job'
  | 'foreign-entry';

export interface StaleItem {
  kind: StaleKind;
  /** The path or device concerned. */
  path: string;
  job?: string;
  detail: string;
}

export interface NodeInventory {
  runtimeDir: string;
  layers: LayerState[];
  jobs: JobState[];
  /** Loop devices whose backing file is in the store, or that back a layer mount. */
  loops: LoopState[];
  stale: StaleItem[];
}


/** Judge a snapshot of the node. Pure. */
export function inventoryNode(snapshot: NodeSnapshot): NodeInventory {
  const runtime = new RuntimePaths(snapshot.runtimeDir);
  const stale: StaleItem[] = [];
  const mounts = snapshot.mounts;

  // Jobs: every job directory, plus any job whose directory only shows up as a mount point.
  const jobIds = new Set(snapshot.jobs.map((job) => job.id));
  for (const entry of mountsUnder(mounts, runtime.jobsDir)) {
    const id = entry.mountPoint.slice(runtime.jobsDir.length + 1).split('/')[0];
    if (id) jobIds.add(id);
  }
  const jobs: JobState[] = [...jobIds].sort(compareIds).map((id) => {
    const dir = join(runtime.jobsDir, id);
    const snap = snapshot.jobs.find((job) => job.id === id) ?? { id, records: [], hasEntry: false };
    const begin = snap.records.find((record): record is BeginRecord => record.op === 'begin');
    const rootfsPath = join(dir, 'rootfs');
    const overlay = mounts.findLast((entry) => entry.mountPoint === rootfsPath && entry.fsType === 'overlay');
    const jobMounts = mountsUnder(mounts, dir).map((entry) => entry.mountPoint).reverse();
    const phase: JobPhase = snap.hasEntry ? 'ready' : snap.records.length ? 'setting-up' : snap.error ? 'failed' : 'empty';
    const state: JobState = {
      id,
      phase,
      image: begin?.image,
      uid: begin?.uid,
      startedAt: begin?.at,
      journalSteps: snap.records.filter((record) => record.op !== 'begin').length,
      rootfs: { path: rootfsPath, mounted: overlay !== undefined },
      upper: upperOf(snap, mounts),
      layers: overlay ? lowerIdsOf(overlay) : [],
      mounts: jobMounts,
      error: snap.error,
    };
    const expectsMounts = snap.records.some((record) => record.op === 'upper-tmpfs' || record.op === 'rootfs');
    if (expectsMounts && jobMounts.length === 0) {
      stale.push({
        kind: 'journal-without-mounts',
        path: dir,
        job: id,
        detail: `journal of ${state.journalSteps} steps (${phase}) but nothing is mounted: the node rebooted or its mount namespace is gone`,
      });
    }
    if (snap.records.length === 0 && jobMounts.length > 0) {
      stale.push({ kind: 'mounts-without-journal', path: dir, job: id, detail: `${jobMounts.length} mounts and no journal` });
    }
    return state;
  });

  // Layers: every layer mount point, mounted or not, with the jobs whose overlay lists it.
  const layerIds = new Set(snapshot.layerDirs);
  for (const entry of mountsUnder(mounts, runtime.layerDir)) {
    const id = entry.mountPoint.slice(runtime.layerDir.length + 1);
    if (id && !id.includes('/')) layerIds.add(id);
  }
  const layers: LayerState[] = [...layerIds].sort().map((id) => {
    const mountPoint = join(runtime.layerDir, id);
    const entry = mounts.findLast((candidate) => candidate.mountPoint === mountPoint);
    const loop = entry ? snapshot.loops.find((device) => device.name === entry.source) : undefined;
    // An erofs layer backed by its file: the mount's source is the file.
    const file = loop?.backingFile ?? (entry?.fsType === 'erofs' && entry.source.startsWith('/') ? entry.source : undefined);
    const users = jobs.filter((job) => job.layers.includes(id)).map((job) => job.id);
    if (!entry) stale.push({ kind: 'empty-layer-dir', path: mountPoint, detail: 'layer mount point with nothing mounted on it' });
    else if (users.length === 0 && snapshot.cachePolicy === 'release') {
      stale.push({ kind: 'unused-layer', path: mountPoint, detail: `no job uses it (${file ?? entry.source}); layers.cache is release` });
    }
    return { id, mountPoint, mounted: entry !== undefined, device: loop || !file ? entry?.source : undefined, file, jobs: users };
  });

  // Loop devices on store files (or backing a layer mount), and who mounts them here.
  const loops: LoopState[] = snapshot.loops
    .filter((device) => isWithin(device.backingFile, snapshot.storePath) || layers.some((layer) => layer.device === device.name))
    .map((device) => ({
      device: device.name,
      file: device.backingFile,
      autoclear: device.autoclear,
      deleted: device.deleted,
      mountedAt: mounts.filter((entry) => entry.source === device.name).map((entry) => entry.mountPoint),
    }));
  for (const loop of loops.filter((candidate) => candidate.mountedAt.length === 0)) {
    stale.push(
      loop.autoclear
        ? { kind: 'loop-held-elsewhere', path: loop.device, detail: `${loop.file}: not mounted here; a lazily detached mount or another mount namespace still uses it, the kernel frees it when that goes` }
        : { kind: 'loop-without-mount', path: loop.device, detail: `${loop.file}: mounted nowhere here and without autoclear, it stays until detached` },
    );
  }
  for (const name of snapshot.diskUppers.names.filter((candidate) => !jobIds.has(candidate))) {
    stale.push({ kind: 'upper-without-job', path: join(snapshot.diskUppers.dir, name), job: name, detail: 'upper directory on node-local disk without a job directory' });
  }
  for (const path of snapshot.foreign) stale.push({ kind: 'foreign-entry', path, detail: 'not created by strata (never followed or removed automatically); inspect and remove it by hand' });
  return { runtimeDir: snapshot.runtimeDir, layers, jobs, loops, stale };
}

function upperOf(snap: JobSnapshot, mounts: MountEntry[]): JobState['upper'] {
  for (const record of snap.records) {
    if (record.op === 'upper-tmpfs') {
      return { path: record.target, backing: 'tmpfs', mounted: mounts.some((entry) => entry.mountPoint === record.target), sizeBytes: record.sizeBytes, ...snap.upperUsage };
    }
    if (record.op === 'upper-dir') return { path: record.path, backing: 'disk', mounted: false, ...snap.upperUsage };
  }
  return undefined;
}

/** Numeric job ids in numeric order, others after them. */
function compareIds(a: string, b: string): number {
  const [x, y] = [Number(a), Number(b)];
  if (Number.isInteger(x) && Number.isInteger(y)) return x - y;
  return a.localeCompare(b, 'en', { numeric: true });
}

// ---- reading the node (no changes) -----------------------------------------------------------

/** Take a snapshot of this node's strata state: mountinfo, loop devices, job dirs and journals. */
export function readNodeSnapshot(config: Pick<Config, 'runtimeDir' | 'store' | 'layers' | 'upper'>): NodeSnapshot {
  const runtime = new RuntimePaths(config.runtimeDir);
  const mounts = readMountinfo();
  const foreign: string[] = [];
  const jobs: JobSnapshot[] = [];
  for (const name of directoriesIn(runtime.jobsDir, foreign, (name) => isJobId(name))) {
    const files = runtime.job(name);
    // The journal and error files are read only if they are plain files: a planted symlink is not followed.
    const records = isPlainFile(files.journal) ? readJournal(files.journal) : [];
    const error = isPlainFile(files.error) ? readFileSync(files.error, 'utf8').split('\n', 1)[0] : undefined;
    const snap: JobSnapshot = { id: name, records, hasEntry: isPlainFile(files.entry), error };
    snap.upperUsage = upperUsage(records, mounts);
    jobs.push(snap);
  }
  const layerDirs = directoriesIn(runtime.layerDir, foreign, (name) => /^[0-9a-f]{1,64}$/.test(name));
  return {
    runtimeDir: config.runtimeDir,
    storePath: config.store.path,
    cachePolicy: config.layers.cache,
    mounts,
    loops: listLoopDevices(),
    jobs,
    layerDirs,
    diskUppers: { dir: config.upper.diskPath, names: directoriesIn(config.upper.diskPath, [], isJobId) },
    foreign,
  };
}

const isJobId = (name: string) => {
  try {
    checkJobId(name);
    return true;
  } catch {
    return false;
  }
};

/** Names of the real directories in `dir` that pass `valid`; anything else is noted as foreign. */
function directoriesIn(dir: string, foreign: string[], valid: (name: string) => boolean): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  return names.filter((name) => {
    const ok = valid(name) && lstatSync(join(dir, name), { throwIfNoEntry: false })?.isDirectory() === true;
    if (!ok) foreign.push(join(dir, name));
    return ok;
  });
}

const isPlainFile = (path: string) => lstatSync(path, { throwIfNoEntry: false })?.isFile() === true;

function upperUsage(records: JournalRecord[], mounts: MountEntry[]): UpperUsage | undefined {
  for (const record of records) {
    if (record.op === 'upper-tmpfs' && mounts.some((entry) => entry.mountPoint === record.target)) {
      const fs = statfsSync(record.target);
      return { usedBytes: (fs.blocks - fs.bfree) * fs.bsize, sizeBytes: fs.blocks * fs.bsize };
    }
    if (record.op === 'upper-dir') return { usedBytes: treeBytes(record.path) };
  }
  return undefined;
}

/** Bytes of the files below `dir`, not crossing into mounts' contents by symlink (lstat only); bounded. */
function treeBytes(dir: string, budget = { entries: 100_000 }): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (--budget.entries < 0) break;
    const stat = lstatSync(join(dir, name), { throwIfNoEntry: false });
    if (!stat) continue;
    total += stat.isDirectory() ? treeBytes(join(dir, name), budget) : stat.size;
  }
  return total;
}

// The applier: the only code that changes a node while setting a job up. For each planned step it
// appends the step to the job journal, then carries it out through the node operations
// (`NodeOps`, the one seam to the host: tests pass a recording fake). Layer mounts and the overlay
// happen under the node lock, so that no other job's teardown can release a layer in between.

import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../../config/types.js';
import { mount } from '../../host/mounts.js';
import { writeContentDir } from '../../host/content-dir.js';
import { bindIntoRootfs, makeMountReadonly, putFileInRootfs, requireHelper } from '../../host/job-mounts.js';
import { withNodeLock } from '../../host/node-lock.js';
import { nodeError } from '../../errors.js';
import { bindError } from './bind-errors.js';
import { faultPoint, killIfFault } from '../../test-switches.js';
import { writeJobFiles } from './identity.js';
import { startIdentityLookup, type IdentityLookup } from '../../host/nss.js';
import { checkOverlay, mountRootfs, siteLayerFormatError } from '../layers/stack.js';
import { RuntimePaths } from '../paths.js';
import type { EntryConfig, Plan, Step } from './plan.js';
import type { DeviceStep } from './devices-plan.js';
import { applyDeviceStep } from './devices-apply.js';
import { JOURNAL_VERSION, openJournal, writeEntry, type JournalWriter } from './records.js';

export interface ApplyTimings {
  [phase: string]: number;
}

export interface ApplyContext {
  config: Config;
  image: string;
  uid: number;
  gid: number;
  /** Filled in with per-step durations (ms). */
  timings: ApplyTimings;
}

type StepOf<Op extends Step['op']> = Extract<Step, { op: Op }>;

/** Every side effect of setting a job up. */
export interface NodeOps {
  /** Throws the node fault that would stop set-up half-way, before anything is done. */
  checkReady(): void;
  makeJobDir(runtime: RuntimePaths, jobDir: string): void;
  /** The job's journal, open for the whole set-up (records.ts). */
  openJournal(path: string): JournalWriter;
  mountUpperTmpfs(step: StepOf<'upper-tmpfs'>): Promise<void>;
  makeUpperDir(step: StepOf<'upper-dir'>): void;
  makeDir(step: StepOf<'mkdir'>): void;
  mountRootfs(step: StepOf<'rootfs'>, lockFile: string, timings: ApplyTimings): Promise<void>;
  /**
   * Throws the job's or the node's error; a missing optional source is no error. `ownTmp`: the
   * job's /tmp, where missing mount points may be made too (host/job-mounts.ts). `groups`: the
   * user's group list from the job's identity lookup, when it was collected.
   */
  bind(step: StepOf<'bind'>, uid: number, gid: number, deny: string, ownTmp?: string, groups?: number[]): Promise<void>;
  makeReadonly(step: StepOf<'readonly'>): Promise<void>;
  /** A new file in a directory of the image, through the helper; none if the image lacks the directory. */
  putFile(step: StepOf<'put-file'>): Promise<void>;
  /** A CDI device edit (devices-apply.ts): a bind, a node check, a link or a mode. */
  device(step: DeviceStep, deny: string): Promise<void>;
  /** Start looking the job's user up in the node's name service (host/nss.ts); collected by writeJobFiles. */
  startIdentityLookup(uid: number, gid: number): IdentityLookup;
  /** The job's generated passwd, group and hostname (identity.ts). */
  writeJobFiles(step: StepOf<'job-files'>, lookup: IdentityLookup): Promise<void>;
  mountTmp(step: StepOf<'tmp-tmpfs'>): Promise<void>;
  /** The wrappers of the node's Slurm commands (runtime/slurm-client/plan.ts). */
  writeSlurmWrappers(step: StepOf<'slurm-client'>): void;
  writeEntry(path: string, entry: EntryConfig): void;
}

export async function applyPlan(plan: Plan, context: ApplyContext, ops: NodeOps = hostOps): Promise<void> {
  const runtime = new RuntimePaths(context.config.runtimeDir);
  const job = runtime.job(plan.jobId);
  ops.checkReady();
  ops.makeJobDir(runtime, job.dir);
  const journal = ops.openJournal(job.journal);
  try {
    journal.append({ op: 'begin', v: JOURNAL_VERSION, jobId: plan.jobId, uid: context.uid, image: context.image, at: new Date().toISOString() });
    await carryOutAll(plan, context, ops, runtime, job, journal);
  } finally {
    journal.close();
  }
}

/**
 * The job's /tmp and its binds go to the mount executor as a run, without waiting for each reply
 * in turn (the executor carries them out in order). The Slurm command wrappers, which touch
 * nothing such a run makes, are written while it is carried out.
 */
const PIPELINED = new Set<Step['op']>(['tmp-tmpfs', 'bind']);
const ALONGSIDE = new Set<Step['op']>(['slurm-client']);

async function carryOutAll(plan: Plan, context: ApplyContext, ops: NodeOps, runtime: RuntimePaths, job: ReturnType<RuntimePaths['job']>, journal: JournalWriter): Promise<void> {
  // STRATA_FAULT_KILL=N:before|after: the kill tests' SIGKILL right after journalling step N
  // (1-based), or right after carrying it out.
  const fault = faultPoint('STRATA_FAULT_KILL');
  // The name service answers while the mounts are made (a lookup changes nothing on the node).
  const jobFiles = plan.steps.find((step): step is StepOf<'job-files'> => step.op === 'job-files');
  const lookup = jobFiles && ops.startIdentityLookup(jobFiles.uid, jobFiles.gid);
  // Once collected (for the job files, before the binds), the user's group list opens the bind
  // sources: no name service lookup per bind.
  const user: { groups?: number[] } = {};
  const identity: IdentityLookup | undefined =
    lookup &&
    (async () => {
      const found = await lookup();
      if (jobFiles.uid === context.uid && jobFiles.gid === context.gid) user.groups = found.groupIds;
      return found;
    });
  const done = (step: Step, index: number, started: number) => {
    killIfFault(fault, index + 1, 'after');
    const key = step.op === 'bind' || step.op === 'device-bind' ? `bind ${step.target}` : step.op;
    context.timings[key] = (context.timings[key] ?? 0) + (performance.now() - started);
  };
  // A run of pipelined steps: each is journalled before it is sent, like every step, and the
  // executor carries them out in order; their replies are awaited in order, the first failure is
  // the job's. (What a failed run left is undone by the teardown like any journalled step.)
  let run: { step: Step; index: number; started: number; outcome: Promise<void> }[] = [];
  const settle = async () => {
    const waiting = run;
    run = [];
    for (const { step, index, started, outcome } of waiting) {
      await outcome;
      done(step, index, started);
    }
  };
  for (const [index, step] of plan.steps.entries()) {
    if (!PIPELINED.has(step.op) && !ALONGSIDE.has(step.op)) await settle();
    const started = performance.now();
    journal.append(step);
    killIfFault(fault, index + 1, 'before');
    const outcome = carryOut(step, ops, context, runtime, job, identity, user.groups);
    if (PIPELINED.has(step.op)) {
      const promise = Promise.resolve(outcome);
      // Awaited in settle(); a failure while an earlier one is awaited is no unhandled rejection.
      promise.catch(() => undefined);
      run.push({ step, index, started, outcome: promise });
      continue;
    }
    await outcome;
    done(step, index, started);
  }
  await settle();
}

function carryOut(step: Step, ops: NodeOps, context: ApplyContext, runtime: RuntimePaths, job: ReturnType<RuntimePaths['job']>, identity?: IdentityLookup, groups?: number[]): Promise<void> | void {
  switch (step.op) {
    case 'upper-tmpfs':
      return ops.mountUpperTmpfs(step);
    case 'upper-dir':
      return ops.makeUpperDir(step);
    case 'mkdir':
      return ops.makeDir(step);
    case 'rootfs':
      return ops.mountRootfs(step, runtime.lockFile, context.timings).catch((error: unknown) => {
        throw siteLayerFormatError(error, context.config.import.compression);
      });
    case 'bind':
      // Strata's own files are opened as root, and come from the runtime dir that others may not.
      return step.trusted ? ops.bind(step, 0, 0, '', job.tmp) : ops.bind(step, context.uid, context.gid, runtime.runtimeDir, job.tmp, groups);
    case 'readonly':
      return ops.makeReadonly(step);
    case 'put-file':
      return ops.putFile(step);
    case 'device-bind':
    case 'device-node':
    case 'symlink':
    case 'chmod':
      return ops.device(step, runtime.runtimeDir);
    case 'job-files':
      return ops.writeJobFiles(step, identity ?? ops.startIdentityLookup(step.uid, step.gid));
    case 'tmp-tmpfs':
      return ops.mountTmp(step);
    case 'slurm-client':
      return ops.writeSlurmWrappers(step);
    case 'entry':
      return ops.writeEntry(step.path, step.entry);
  }
}

/** The real host. */
export const hostOps: NodeOps = {
  checkReady() {
    requireHelper();
  },
  makeJobDir(runtime, jobDir) {
    mkdirSync(runtime.jobsDir, { recursive: true, mode: 0o711 });
    mkdirSync(jobDir, { mode: 0o711 });
  },
  openJournal,
  async mountUpperTmpfs(step) {
    mkdirSync(step.target, { mode: 0o700 });
    await mount({ type: 'tmpfs', source: 'strata-upper', target: step.target, options: [`size=${step.sizeBytes}`, 'mode=0700', 'nosuid', 'nodev'] });
    makeUpperDirs(step.target, step.uid, step.gid);
  },
  makeUpperDir(step) {
    mkdirSync(step.path, { recursive: true, mode: 0o700 });
    makeUpperDirs(step.path, step.uid, step.gid);
  },
  makeDir(step) {
    mkdirSync(step.path, { mode: step.mode });
  },
  async mountRootfs(step, lockFile, timings) {
    const { overlayMounted } = await withNodeLock(lockFile, () => mountRootfs(step), (waitedMs) => (timings['lock wait'] = waitedMs));
    if (!overlayMounted) checkOverlay(step);
  },
  async bind(step, uid, gid, deny, ownTmp, groups) {
    const reply = await bindIntoRootfs({
      groups,
      source: step.source,
      rootfs: step.rootfs,
      target: step.target,
      uid,
      gid,
      readonly: step.readonly,
      recursive: step.recursive,
      keepDev: step.target === '/dev',
      optional: step.optional,
      create: true,
      ifAbsent: step.ifAbsent,
      deny: deny || undefined,
      createAlsoIn: ownTmp,
    });
    if (!reply.ok) throw bindError(step, reply, uid);
  },
  async makeReadonly(step) {
    const reply = await makeMountReadonly(step.target);
    if (!reply.ok) throw nodeError('E_READONLY', `cannot make ${step.target} read-only: ${reply.message}`, { detail: reply.value });
  },
  async putFile(step) {
    const reply = await putFileInRootfs(step.rootfs, step.dir, step.name, step.content, step.uid, step.gid);
    // What the image put at that path (a link, a file) only means apt keeps its own setting.
    if (!reply.ok && reply.stage !== 'target') throw nodeError('E_JOB_SETUP', `cannot write ${step.dir}/${step.name} in ${step.rootfs}: ${reply.message}`, { detail: reply.value });
  },
  device: applyDeviceStep,
  startIdentityLookup,
  writeJobFiles,
  async mountTmp(step) {
    // 0700 parent: the tmpfs root is 1777 like any /tmp, reachable only from inside the container.
    mkdirSync(dirname(step.target), { mode: 0o700 });
    mkdirSync(step.target, { mode: 0o755 });
    await mount({ type: 'tmpfs', source: 'strata-tmp', target: step.target, options: [`size=${step.sizeBytes}`, 'mode=1777', 'nosuid', 'nodev'] });
  },
  writeSlurmWrappers(step) {
    // Shared by the jobs whose wrappers are the same (the name is their content): once written,
    // a job only binds it. Root's, in the runtime dir.
    writeContentDir(step.dir, step.wrappers);
  },
  writeEntry,
};

function makeUpperDirs(root: string, uid: number, gid: number) {
  // The upper's root becomes the container's /: owned by the job's user, who may create top-level
  // directories in their own ephemeral layer. The work dir stays root's.
  // 0700: the rootfs is reachable on the host under the runtime dir; no other user may look or
  // write into it there (the image's /tmp is world-writable).
  chmodSync(root, 0o755);
  mkdirSync(`${root}/u`, { mode: 0o700 });
  chownSync(`${root}/u`, uid, gid);
  mkdirSync(`${root}/w`, { mode: 0o700 });
}

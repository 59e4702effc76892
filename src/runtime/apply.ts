// The applier: the only code that changes a node while setting a job up. For each planned step it
// appends the step to the job journal, then carries it out. Layer mounts and the overlay happen
// under the node lock, so that no other job's teardown can release a layer in between.

import { chmodSync, chownSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { errnoCode, nodeError, userError } from '../errors.js';
import { mount } from '../host/mounts.js';
import { withNodeLock } from '../host/node-lock.js';
import { appendJournal } from './journal.js';
import { mountRootfs } from './layers.js';
import { RuntimePaths } from './paths.js';
import type { BindRequest } from './mount-request.js';
import type { Plan, Step } from './plan.js';
import { resolveInRoot } from './resolve-in-root.js';

export interface ApplyTimings {
  [phase: string]: number;
}

export interface ApplyContext {
  config: Config;
  image: string;
  uid: number;
  /** Filled in with per-step durations (ms). */
  timings: ApplyTimings;
}

export async function applyPlan(plan: Plan, context: ApplyContext): Promise<void> {
  const runtime = new RuntimePaths(context.config.runtimeDir);
  const job = runtime.job(plan.jobId);
  mkdirSync(runtime.jobsDir, { recursive: true, mode: 0o711 });
  mkdirSync(job.dir, { mode: 0o711 });
  appendJournal(job.journal, { op: 'begin', jobId: plan.jobId, uid: context.uid, image: context.image, at: new Date().toISOString() });
  const fault = faultPoint();
  for (const [index, step] of plan.steps.entries()) {
    const started = performance.now();
    await applyStep(step, job.journal, runtime.lockFile, context.timings, fault?.index === index + 1 ? fault.when : undefined);
    const key = step.op === 'bind' ? `bind ${step.target}` : step.op;
    context.timings[key] = (context.timings[key] ?? 0) + (performance.now() - started);
  }
}

async function applyStep(step: Step, journalPath: string, lockFile: string, timings: ApplyTimings, killWhen?: 'before' | 'after'): Promise<void> {
  let journalled = false;
  const journal = (record: Step) => {
    appendJournal(journalPath, record);
    journalled = true;
    if (killWhen === 'before') process.kill(process.pid, 'SIGKILL');
  };
  await carryOut(step, journal, lockFile, timings);
  // A step with nothing to journal (e.g. a skipped optional bind) is killed after it instead.
  if (killWhen === 'after' || (killWhen === 'before' && !journalled)) process.kill(process.pid, 'SIGKILL');
}

async function carryOut(step: Step, journal: (record: Step) => void, lockFile: string, timings: ApplyTimings): Promise<void> {
  switch (step.op) {
    case 'upper-tmpfs': {
      journal(step);
      mkdirSync(step.target, { mode: 0o700 });
      await mount({ type: 'tmpfs', source: 'strata-upper', target: step.target, options: [`size=${step.sizeBytes}`, 'mode=0700', 'nosuid', 'nodev'] });
      makeUpperDirs(step.target, step.uid, step.gid);
      return;
    }
    case 'upper-dir': {
      journal(step);
      mkdirSync(step.path, { recursive: true, mode: 0o700 });
      makeUpperDirs(step.path, step.uid, step.gid);
      return;
    }
    case 'mkdir':
      journal(step);
      mkdirSync(step.path, { mode: step.mode });
      return;
    case 'rootfs':
      journal(step);
      await withNodeLock(lockFile, () => mountRootfs(step), (waitedMs) => (timings['lock wait'] = waitedMs));
      return;
    case 'readonly':
      journal(step);
      // A read-only bind of the rootfs onto itself: binds added later stay as they are. The bind's
      // remount sets every flag anew, so nosuid,nodev must be restated or they are lost.
      await mount({ source: step.target, target: step.target, flags: ['--bind', '--make-private'], options: ['bind', 'ro', 'nosuid', 'nodev'] });
      return;
    case 'mountpoints':
      // Nothing to journal: what this creates lives in the job's upper and goes with it.
      for (const bind of step.binds) {
        const sourceStat = checkSource(bind);
        if (sourceStat) resolveInRoot(step.rootfs, bind.target, sourceStat.isDirectory() ? 'dir' : 'file');
      }
      return;
    case 'bind': {
      if (!checkSource(step)) return;
      const target = resolveInRoot(step.rootfs, step.target);
      const resolved = { ...step, target };
      journal(resolved);
      // rslave: host mount events still reach the container, but unmounting here never
      // propagates back to the host's own mounts.
      // util-linux applies options given with --bind by a remount of the new bind mount.
      const options = [...(step.readonly ? ['ro'] : []), 'nosuid', ...(step.target === '/dev' ? [] : ['nodev'])];
      await mount({ source: step.source, target, flags: [step.recursive ? '--rbind' : '--bind', '--make-rslave'], options });
      return;
    }
    case 'entry': {
      journal(step);
      // Written last and atomically: its presence means "ready to enter".
      const temp = `${step.path}.tmp`;
      writeFileSync(temp, `${JSON.stringify(step.entry, null, 2)}\n`, { mode: 0o644 });
      renameSync(temp, step.path);
      return;
    }
  }
}

function makeUpperDirs(root: string, uid: number, gid: number) {
  // The upper's root becomes the container's /: owned by the job's user, who may create top-level
  // directories in their own ephemeral layer. The work dir stays root's.
  chmodSync(root, 0o755);
  mkdirSync(`${root}/u`, { mode: 0o755 });
  chownSync(`${root}/u`, uid, gid);
  mkdirSync(`${root}/w`, { mode: 0o700 });
}

/** The source's stat, or undefined for a missing optional source; a missing required one fails the job. */
function checkSource(bind: BindRequest) {
  const sourceStat = statOrUndefined(bind.source);
  if (!sourceStat && !bind.optional) {
    throw userError('E_BAD_MOUNT', `mount source ${bind.source} does not exist on this node`, {
      hint: 'check the path in --container-mounts (it must exist on every node of the job)',
    });
  }
  return sourceStat;
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw nodeError('E_STAT', `cannot check mount source ${path}: ${(error as Error).message}`);
  }
}

/**
 * Fault injection for the kill tests: STRATA_FAULT_KILL=N:before|after SIGKILLs this process right
 * after journalling step N (1-based), or right after carrying it out — the two instants at which
 * a scheduler's kill leaves different state behind.
 */
function faultPoint(): { index: number; when: 'before' | 'after' } | undefined {
  const match = /^(\d+):(before|after)$/.exec(process.env.STRATA_FAULT_KILL ?? '');
  return match ? { index: Number(match[1]), when: match[2] as 'before' | 'after' } : undefined;
}

// The prolog for one job on one node: resolve the image, plan, apply. User-caused failures are
// written to the job's `error` file for the task-entry step to report, and the prolog succeeds
// (a failed prolog drains the node); only node faults fail it.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import type { Config } from '../../config/types.js';
import { asStrataError, nodeFaultOf, type StrataError } from '../../errors.js';
import { Store } from '../../store/store.js';
import { applyPlan, type ApplyTimings } from './apply.js';
import { RuntimePaths } from '../paths.js';
import { planJob, type JobRequest, type Plan } from './plan.js';
import { teardownJob } from './teardown.js';
import { homeOf, userNameOf } from '../../host/passwd.js';
import { currentEnv } from '../../host/job-context.js';
import { checkStrataPaths } from './strata-paths.js';
import { jobDevices } from '../devices/index.js';
import { missingGroupsNote } from './devices-plan.js';
import { startIdentityLookup } from '../../host/nss.js';
import { gatherSlurmClient } from '../../host/slurm-client.js';
import type { QualifiedName } from '../devices/names.js';
import type { ResolvedImage } from '../../store/store.js';
import { parseSaveTarget } from '../save/target.js';
import { recordSaveRequest } from '../save/request.js';

export interface PrologRequest extends Omit<JobRequest, 'home' | 'devices' | 'slurmClient'> {
  /** A Slurm job: gather the node's Slurm client for its container (host/slurm-client.ts). */
  slurmClient?: boolean;
  /** The job's explicit CDI device requests (`--container-devices`). */
  devices?: QualifiedName[];
  /** The image as the user typed it; empty means the job uses no container. */
  image?: string;
  /** The digest pinned at submit time; wins over `image`. */
  imageDigest?: string;
  /** `--container-save` as the user gave it (runtime/save/target.ts). */
  save?: string;
}

export type PrologOutcome =
  | { result: 'no-image' }
  | { result: 'ready'; manifestDigest: string; layers: number; mountedLayers?: number; again?: boolean; devices?: string[]; deviceNotes?: string[] }
  | { result: 'user-error'; error: StrataError }
  | { result: 'dry-run'; plan: Plan };

/**
 * The job's image from the store; `~/NAME:TAG` is the job user's own namespace, and so is the
 * fallback of a registry reference in Pyxis's syntax (where an import on first use put it). A
 * pinned digest needs no name lookup.
 */
async function openImage(request: PrologRequest, config: Config) {
  const self = request.image && !request.imageDigest ? await userNameOf(request.uid) : undefined;
  return new Store(config.store.path, self).open(request.image ?? request.imageDigest!, request.imageDigest);
}

export async function runProlog(request: PrologRequest, config: Config, timings: ApplyTimings, dryRun = false): Promise<PrologOutcome> {
  if (!request.image && !request.imageDigest) return { result: 'no-image' };
  const job = new RuntimePaths(config.runtimeDir).job(request.jobId);
  if (dryRun) {
    const image = await openImage(request, config);
    return { result: 'dry-run', plan: planJob(await jobRequest(request, config, image), config, image) };
  }
  if (existsSync(job.entry)) return { result: 'ready', manifestDigest: '', layers: 0, again: true };
  // A journal without entry.json is a prolog that was killed half-way: undo it, then start over.
  if (existsSync(job.dir)) await teardownJob(request.jobId, config);

  const mark = (phase: string, started: number) => (timings[phase] = performance.now() - started);
  try {
    let started = performance.now();
    const image = await openImage(request, config);
    mark('store', started);
    started = performance.now();
    // Whether the user may read each source is decided when the helper opens it as the user.
    checkStrataPaths(request.mounts, config);
    const save = request.save ? parseSaveTarget(request.save, { home: await homeOf(request.uid), workdir: request.jobWorkDir }) : undefined;
    const plan = planJob(await jobRequest(request, config, image), config, image);
    mark('plan', started);
    await applyPlan(plan, { config, image: image.manifestDigest, uid: request.uid, gid: request.gid, timings });
    if (save) recordSaveRequest(request.jobId, config, { text: request.save!, target: save });
    const entry = plan.steps.find((step) => step.op === 'entry')?.entry;
    const devices = entry?.devices;
    // The job-files step looked the user up moments ago: this is its cached answer.
    const groupsNote = entry?.additionalGids && missingGroupsNote(request.uid, entry.additionalGids, (await startIdentityLookup(request.uid, request.gid)()).groupIds);
    const notes = [...(plan.notes ?? []), ...(groupsNote ? [groupsNote] : [])];
    return { result: 'ready', manifestDigest: image.manifestDigest, layers: image.layers.length, ...(devices ? { devices } : {}), ...(notes.length ? { deviceNotes: notes } : {}) };
  } catch (thrown) {
    const error = nodeFaultOf(thrown) ?? asStrataError(thrown);
    // Whatever was half set up goes; the job dir stays only to carry the error to the job.
    await teardownJob(request.jobId, config).catch(() => undefined);
    // Only a diagnosed node fault fails the prolog (and drains the node). A bug of ours, like a
    // user error, fails just this job: a bug that drained every node it met would be far worse.
    if (error.kind === 'node') throw error;
    recordJobError(request.jobId, error.summary, config);
    return { result: 'user-error', error };
  }
}

/**
 * The planner's request: the user's home, and the CDI edits for the devices the job asked for (or
 * gets automatically: a CUDA image and the job's GPUs, site defaults). The prolog's environment
 * is the job's (SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES).
 */
async function jobRequest(request: PrologRequest, config: Config, image: ResolvedImage): Promise<JobRequest> {
  const { devices: explicit, slurmClient, save: _save, ...rest } = request;
  const { edits } = jobDevices(config, { explicit: explicit ?? [], imageEnv: image.config.config?.Env ?? [], jobEnv: currentEnv() });
  // slurmd's environment names its slurm.conf (SLURM_CONF), which the client in the job uses too.
  const client = slurmClient && config.slurmClient.enabled ? { slurmClient: gatherSlurmClient(currentEnv(), config) } : {};
  return { ...rest, home: await homeOf(request.uid), ...(edits.devices.length ? { devices: edits } : {}), ...client };
}

/** Leave a user error where the job finds it (`strata exec`, the PBS hook's execjob_launch). */
export function recordJobError(jobId: string, summary: string, config: Config): void {
  const job = new RuntimePaths(config.runtimeDir).job(jobId);
  mkdirSync(job.dir, { recursive: true, mode: 0o711 });
  writeFileSync(job.error, `strata: ${summary}\n`, { mode: 0o644 });
}

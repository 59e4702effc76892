// `strata exec [--job ID] [--workdir DIR] -- CMD...`: run CMD as the calling user inside the rootfs
// the prolog prepared for their job on this node, with the image's environment. No setuid: a user
// and mount namespace (src/runtime/enter.ts). For PBS (pbsdsh, mpirun), and for Slurm sites
// without the SPANK plugin.
//
// Exit status: CMD's own (128 + N if a signal killed it; 126/127 if it cannot be run, from
// unshare); 125 when strata itself refuses or fails, with one line on stderr saying why.

import { lstatSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { errnoCode, nodeError, userError } from '../../errors.js';
import { runAttached } from '../../host/attached.js';
import { probeUserNamespace, readSysctl, userNamespaceSwitchedOff } from '../../host/userns.js';
import { entryArgv, entryEnvironment, entryWorkdir } from '../../runtime/job/enter.js';
import { RuntimePaths } from '../../runtime/paths.js';
import { readEntry } from '../../runtime/job/records.js';
import { renderError } from '../render-error.js';

/** strata's own failure, as docker/podman run report it: distinct from any status of CMD. */
export const EXEC_FAILED = 125;

export interface ExecArgs {
  job?: string;
  workdir?: string;
  command: string[];
}

export async function execCommand(args: ExecArgs, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const prepared = await prepare(args, env);
    return await runAttached(prepared.argv, { env: prepared.env });
  } catch (error) {
    renderError(error);
    return EXEC_FAILED;
  }
}

async function prepare(args: ExecArgs, env: NodeJS.ProcessEnv) {
  if (args.command.length === 0) throw userError('E_USAGE', 'no command to run', { hint: 'give one after --, e.g. strata exec -- python train.py' });
  const jobId = args.job || env.SLURM_JOB_ID || env.SLURM_JOBID || env.PBS_JOBID;
  if (!jobId) throw userError('E_NO_JOB', 'not inside a job (no SLURM_JOB_ID or PBS_JOBID)', { hint: 'run it from a job, or name the job with --job ID' });
  const config = await loadConfig(env);
  const runtime = new RuntimePaths(config.runtimeDir);
  const job = runtime.job(jobId);
  const uid = process.getuid!();

  // The prolog's verdict first: a user error it recorded is this job's answer.
  const error = readIfExists(job.error);
  if (error !== undefined) {
    const message = error.split('\n', 1)[0].replace(/^strata: /, '');
    throw userError('E_JOB_SETUP', `the container of job ${jobId} could not be set up on this node: ${message}`);
  }
  const entryStat = lstatOrUndefined(job.entry);
  if (!entryStat) {
    throw userError('E_NO_CONTAINER', `job ${jobId} has no container on this node (no ${job.entry})`, {
      hint: 'submit the job with an image (qsub -l container_image=NAME:TAG, sbatch --container-image=NAME:TAG)',
    });
  }
  // Only what root's prolog wrote is believed.
  for (const [path, stat] of [[runtime.runtimeDir, lstatSync(runtime.runtimeDir)], [runtime.jobsDir, lstatSync(runtime.jobsDir)], [job.dir, lstatSync(job.dir)], [job.entry, entryStat]] as const) {
    if (!rootOwned(stat)) throw nodeError('E_NOT_ROOT_OWNED', `refusing ${path}: not written by strata's prolog (it must be root's and not group/other-writable)`);
  }
  const entry = readEntry(job.entry);
  if (uid !== 0 && entry.uid !== uid) {
    throw userError('E_NOT_YOUR_JOB', `job ${jobId} belongs to uid ${entry.uid}, not to you (uid ${uid})`, { hint: 'give your own job\'s id with --job' });
  }
  const rootfsStat = statSync(job.rootfs);
  if (rootfsStat.dev === statSync(job.dir).dev) throw nodeError('E_NOT_MOUNTED', `the container root ${job.rootfs} is not mounted`);

  const switchedOff = userNamespaceSwitchedOff(readSysctl) ?? (await probeUserNamespace());
  if (switchedOff) throw nodeError('E_NO_USERNS', switchedOff);

  const cwd = process.cwd();
  const workdir = entryWorkdir({ explicit: args.workdir, cwd, cwdInContainer: sameDirectory(cwd, join(job.rootfs, cwd)), entry });
  return { argv: entryArgv(job.rootfs, workdir, args.command), env: entryEnvironment(env, entry.env ?? [], Array.isArray(entry.devicePaths) ? entry.devicePaths : []) };
}

const rootOwned = (stat: Stats) => stat.uid === 0 && (stat.mode & 0o022) === 0 && !stat.isSymbolicLink();

function sameDirectory(a: string, b: string): boolean {
  try {
    const [left, right] = [statSync(a), statSync(b)];
    return left.isDirectory() && left.dev === right.dev && left.ino === right.ino;
  } catch {
    return false;
  }
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

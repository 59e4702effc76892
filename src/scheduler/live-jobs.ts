// Which jobs the scheduler still has on this node: what `strata node gc` keeps. On a PBS MoM
// (pbs.conf says this host runs one) the MoM's job files are asked; otherwise Slurm, with squeue
// (every job listed on this node, in any state it lists: pending on the way in, configuring,
// running, completing — so a prolog or epilog still at work is never disturbed); other
// schedulers (Torque, sites' own scripts) hand the list in with --live-jobs.
// If the scheduler cannot be asked, this throws: gc must then remove nothing.

import { readdirSync, statSync, type Dirent } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { firstLine, nodeError, userError } from '../errors.js';
import { runTool } from '../host/exec.js';
import { TOOLS } from '../host/tools.js';
import { findPbsMom, pbsMomJobIds, type PbsMom } from './pbs-mom.js';

export interface LiveJobs {
  jobs: Set<string>;
  /** Where the answer came from, for messages ("squeue on n1", "--live-jobs"). */
  source: string;
}

/** Parse `--live-jobs 12,13 14` (commas or spaces; empty = no live job). Pure. */
export function parseLiveJobs(text: string): Set<string> {
  const ids = text.split(/[\s,]+/).filter(Boolean);
  for (const id of ids) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._\-[\]]*$/.test(id)) {
      throw userError('E_USAGE', `invalid job id "${id}" in --live-jobs`, { hint: 'give job ids separated by commas, e.g. --live-jobs 1234,1235' });
    }
  }
  return new Set(ids);
}

/** The Slurm node name of this host: slurmd's (SLURMD_NODENAME) if set, else the short host name. */
export function slurmNodeName(env: NodeJS.ProcessEnv = process.env): string {
  return env.SLURMD_NODENAME || hostname().split('.')[0];
}

/** Ask Slurm (squeue, by absolute path: there may be no PATH) for the job ids on this node. */
export async function slurmLiveJobs(env: NodeJS.ProcessEnv = process.env): Promise<LiveJobs> {
  const node = slurmNodeName(env);
  const cannot = (why: string) =>
    nodeError('E_SCHEDULER', `cannot ask Slurm which jobs run on ${node} (${why}): nothing was removed`, {
      hint: 'fix the Slurm client on this node, or pass the live job ids with --live-jobs ID,...',
    });
  // squeue reads slurm.conf (SLURM_CONF if the site sets one) and asks slurmctld. An unknown node
  // name is an error, never an empty list, so a wrong name cannot make every job look finished.
  const passed = env.SLURM_CONF ? { SLURM_CONF: env.SLURM_CONF } : undefined;
  const result = await runTool('squeue', ['--noheader', '--nodelist', node, '--format', '%A'], { env: passed, timeoutMs: 30_000 }).catch((error: Error) => {
    throw cannot(`${TOOLS.squeue}: ${error.message}`);
  });
  if (result.exitCode !== 0) throw cannot(firstLine(result.stderr) || `squeue exit status ${result.exitCode}`);
  const jobs = new Set(result.stdout.split('\n').map((line) => line.trim()).filter(Boolean));
  for (const id of jobs) if (!/^\d+$/.test(id)) throw cannot(`unexpected squeue output "${id}"`);
  return { jobs, source: `squeue on ${node}` };
}

/** The scheduler of this node: the PBS MoM if pbs.conf names one, else Slurm. */
export async function schedulerLiveJobs(runtimeDir: string, env: NodeJS.ProcessEnv = process.env): Promise<LiveJobs> {
  const mom = findPbsMom(env);
  return mom ? pbsLiveJobs(mom, runtimeDir) : slurmLiveJobs(env);
}

/**
 * A job strata set up less than this long ago is kept even without a job file: the MoM writes a
 * job's .JB only when the job is committed, after execjob_begin (where strata's prolog runs)
 * has accepted it (openpbs src/server/req_quejob.c). The hook's own reconciliation waits as long.
 */
export const PBS_SETUP_GRACE_MS = 120_000;

/** Ask the PBS MoM: its job files, plus the strata jobs young enough to be starting right now. */
export function pbsLiveJobs(mom: PbsMom, runtimeDir: string, now = Date.now()): LiveJobs {
  const dir = join(mom.home, 'mom_priv', 'jobs');
  let jobs: Set<string>;
  try {
    jobs = new Set(pbsMomJobIds(mom));
  } catch (error) {
    throw nodeError('E_SCHEDULER', `cannot ask PBS which jobs run on this node (${dir}: ${(error as Error).message}): nothing was removed`, {
      hint: `fix PBS_HOME in ${mom.conf} (or PBS_CONF_FILE), or pass the live job ids with --live-jobs ID,...`,
    });
  }
  const jobsDir = join(runtimeDir, 'jobs');
  let ours: Dirent[] = [];
  try {
    ours = readdirSync(jobsDir, { withFileTypes: true });
  } catch {
    // No job directories: nothing to keep.
  }
  for (const job of ours.filter((entry) => entry.isDirectory())) {
    const changed = statSync(join(jobsDir, job.name), { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (now - changed < PBS_SETUP_GRACE_MS) jobs.add(job.name);
  }
  return { jobs, source: `the PBS MoM's job files (${dir})` };
}

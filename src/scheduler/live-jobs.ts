// Which jobs the scheduler still has on this node: what `strata node gc` keeps. Slurm is asked
// with squeue (every job listed on this node, in any state it lists: pending on the way in,
// configuring, running, completing — so a prolog or epilog still at work is never disturbed);
// other schedulers (PBS hooks, sites' own scripts) hand the list in with --live-jobs.
// If the scheduler cannot be asked, this throws: gc must then remove nothing.

import { hostname } from 'node:os';
import { firstLine, nodeError, userError } from '../errors.js';
import { runTool } from '../host/exec.js';
import { TOOLS } from '../host/tools.js';

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

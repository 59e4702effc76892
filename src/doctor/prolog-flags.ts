// slurm.conf's PrologFlags, as strata needs them (docs/slurm.md "PrologFlags"): Alloc (or a flag
// implying it), so that the prolog runs on every node of an allocation; and not RunInJob before
// Slurm 25.11.4, where a RunInJob epilog now and then runs as the job's user and cannot tear down.

import { prologRunsAtAllocation } from '../scheduler/slurm-conf.js';
import { fail, ok, warn, type Check } from './check.js';

/** The first Slurm release whose extern step no longer drops privileges around a RunInJob epilog. */
const RUN_IN_JOB_FIXED = [25, 11, 4];

export function checkPrologFlags(prologFlags: string | undefined, slurmVersion: string | undefined): Check {
  const name = 'slurm.prologflags';
  const flags = prologFlags ?? '';
  if (!prologRunsAtAllocation(flags)) return fail(name, `PrologFlags=${flags} lacks Alloc: the prolog would run only where a step lands`, 'add PrologFlags=Alloc to slurm.conf');
  const runInJob = flags.split(',').some((flag) => flag.trim().toLowerCase() === 'runinjob');
  if (runInJob && releaseBefore(slurmVersion, RUN_IN_JOB_FIXED)) {
    return warn(name, `PrologFlags=${flags} with Slurm ${slurmVersion ?? '(version unknown)'}: before 25.11.4 a RunInJob epilog now and then runs as the job's user, cannot tear the job down and drains the node`, 'use PrologFlags=Alloc (without RunInJob) until the nodes run Slurm 25.11.4 or later');
  }
  return ok(name, `PrologFlags=${flags}`);
}

/** Whether `version` ("24.11.5", "25.11.4-1") is older than `fixed`; unknown counts as older. */
function releaseBefore(version: string | undefined, fixed: number[]): boolean {
  const parts = /^(\d+)\.(\d+)\.(\d+)/.exec(version ?? '')?.slice(1).map(Number);
  if (!parts) return true;
  for (let i = 0; i < fixed.length; i++) if (parts[i] !== fixed[i]) return parts[i] < fixed[i];
  return false;
}

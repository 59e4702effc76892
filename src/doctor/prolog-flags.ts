// slurm.conf's PrologFlags, as strata needs them (docs/slurm.md "PrologFlags"): Alloc (or a flag
// implying it), so that the prolog runs on every node of an allocation; and not RunInJob before
// Slurm 25.11.4, where a RunInJob epilog now and then runs as the job's user and cannot tear down.

import { prologFlagList, prologRunsAtAllocation } from '../scheduler/slurm-conf.js';
import { fail, ok, warn, type Check } from './check.js';
import { versionBefore } from './versions.js';

/** The first Slurm release whose extern step no longer drops privileges around a RunInJob epilog. */
const RUN_IN_JOB_FIXED = [25, 11, 4];

export function checkPrologFlags(prologFlags: string | undefined, slurmVersion: string | undefined): Check {
  const name = 'slurm.prologflags';
  const flags = prologFlags ?? '';
  if (!prologRunsAtAllocation(flags)) return fail(name, `PrologFlags=${flags} lacks Alloc: the prolog would run only where a step lands`, 'add PrologFlags=Alloc to slurm.conf');
  // An unknown release counts as an affected one.
  if (prologFlagList(flags).includes('runinjob') && (versionBefore(slurmVersion, RUN_IN_JOB_FIXED) ?? true)) {
    return warn(name, `PrologFlags=${flags} with Slurm ${slurmVersion ?? '(version unknown)'}: before 25.11.4 a RunInJob epilog now and then runs as the job's user, cannot tear the job down and drains the node`, 'use PrologFlags=Alloc (without RunInJob) until the nodes run Slurm 25.11.4 or later');
  }
  return ok(name, `PrologFlags=${flags}`);
}

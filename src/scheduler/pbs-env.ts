// What strata's PBS MoM hook (etc/pbs/strata_hook.py) hands the PBS prolog entry point, as
// strata's prolog arguments. Pure. The hook reads the job's attributes (owner, Resource_List,
// Variable_List) and passes them in the environment under these names:
//
//   PBS_JOBID                 the job id, e.g. 1234.pbs01
//   STRATA_JOB_UID/_GID       the job owner's numeric uid and gid (looked up by the hook)
//   STRATA_JOB_WORKDIR        the job's working directory on the host (PBS_O_WORKDIR)
//   STRATA_IMAGE              -l container_image=... or -v STRATA_CONTAINER_IMAGE=...
//   STRATA_IMAGE_DIGEST       the digest the queuejob hook pinned at qsub time
//   STRATA_MOUNTS, STRATA_WORKDIR, STRATA_WRITABLE, STRATA_READONLY, STRATA_UPPER_SIZE,
//   STRATA_MOUNT_HOME         from -v STRATA_CONTAINER_MOUNTS=... and friends
//
// Every value comes from the user and is validated downstream like any other input.

import type { PrologArgs } from './prolog-args.js';
import { containerOptions, flag } from './slurm-env.js';

export function pbsHookJob(env: NodeJS.ProcessEnv): PrologArgs {
  const options = containerOptions(env, 'STRATA_');
  return {
    job: env.PBS_JOBID ?? '',
    uid: Number(env.STRATA_JOB_UID || NaN),
    gid: Number(env.STRATA_JOB_GID || NaN),
    jobWorkdir: env.STRATA_JOB_WORKDIR || undefined,
    ...options,
    // -v STRATA_CONTAINER_READONLY=1, as the SPANK plugin's --container-readonly.
    writable: flag(env.STRATA_READONLY) ? false : options.writable,
    timings: false,
  };
}

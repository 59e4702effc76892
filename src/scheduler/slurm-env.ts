// What Slurm hands the node prolog and epilog, as strata's prolog arguments. Pure.
// All SPANK_* values come from the user and are validated downstream like any other input.

import type { PrologArgs } from '../cli/commands/prolog.js';

/** A yes/no value from the environment; unset or empty is undefined. (Shared with pbs-env.ts.) */
export const flag = (value: string | undefined) => (value === undefined || value === '' ? undefined : !['0', 'no', 'false'].includes(value.toLowerCase()));

export function slurmJob(env: NodeJS.ProcessEnv): PrologArgs {
  return {
    job: env.SLURM_JOB_ID ?? env.SLURM_JOBID ?? '',
    uid: Number(env.SLURM_JOB_UID || env.SLURM_UID || NaN),
    gid: Number(env.SLURM_JOB_GID || NaN),
    image: env.SPANK_STRATA_IMAGE || undefined,
    imageDigest: env.SPANK_STRATA_IMAGE_DIGEST || undefined,
    mounts: env.SPANK_STRATA_MOUNTS || undefined,
    workdir: env.SPANK_STRATA_WORKDIR || undefined,
    jobWorkdir: env.SLURM_JOB_WORK_DIR || undefined,
    writable: flag(env.SPANK_STRATA_WRITABLE) ?? true,
    upperSize: env.SPANK_STRATA_UPPER_SIZE || undefined,
    timings: false,
  };
}

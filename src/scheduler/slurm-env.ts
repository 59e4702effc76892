// What Slurm hands the node prolog and epilog, as strata's prolog arguments. Pure.
// All SPANK_* values come from the user and are validated downstream like any other input.

import type { PrologArgs } from './prolog-args.js';

/** A yes/no value from the environment; unset or empty is undefined. */
export const flag = (value: string | undefined) => (value === undefined || value === '' ? undefined : !['0', 'no', 'false'].includes(value.toLowerCase()));

/**
 * The container options a scheduler adapter passes as `<prefix>IMAGE`, `<prefix>IMAGE_DIGEST`,
 * `<prefix>MOUNTS`, `<prefix>WORKDIR`, `<prefix>WRITABLE` (yes/no), `<prefix>UPPER_SIZE` and
 * `<prefix>DEVICES` (CDI device names), `<prefix>SAVE` (--container-save), and Pyxis's flag pairs
 * as yes/no (unset: the site's default) `<prefix>MOUNT_HOME`, `<prefix>ENTRYPOINT`, `<prefix>REMAP_ROOT`:
 * SPANK_STRATA_* for Slurm, STRATA_* from the PBS hook.
 */
export function containerOptions(env: NodeJS.ProcessEnv, prefix: string): Pick<PrologArgs, 'image' | 'imageDigest' | 'mounts' | 'workdir' | 'writable' | 'upperSize' | 'devices' | 'save' | 'mountHome' | 'entrypoint' | 'remapRoot'> {
  const value = (name: string) => env[`${prefix}${name}`] || undefined;
  return {
    image: value('IMAGE'),
    imageDigest: value('IMAGE_DIGEST'),
    mounts: value('MOUNTS'),
    workdir: value('WORKDIR'),
    writable: flag(value('WRITABLE')) ?? true,
    upperSize: value('UPPER_SIZE'),
    devices: value('DEVICES'),
    mountHome: flag(value('MOUNT_HOME')),
    entrypoint: flag(value('ENTRYPOINT')),
    remapRoot: flag(value('REMAP_ROOT')),
    save: value('SAVE'),
  };
}

export function slurmJob(env: NodeJS.ProcessEnv): PrologArgs {
  return {
    job: env.SLURM_JOB_ID ?? env.SLURM_JOBID ?? '',
    uid: Number(env.SLURM_JOB_UID || env.SLURM_UID || NaN),
    gid: Number(env.SLURM_JOB_GID || NaN),
    jobWorkdir: env.SLURM_JOB_WORK_DIR || undefined,
    ...containerOptions(env, 'SPANK_STRATA_'),
    timings: false,
    slurmClient: true,
  };
}

// What Torque's pbs_mom hands mom_priv/prologue and prologue.parallel (argv, environment), as
// strata's prolog arguments. Pure; the user and group names are turned into ids by the caller.
//
//   $1 job id  $2 user  $3 group  $4 job name  $5 resource list (name=value,...)
//   $6 queue  $7 account  $8 job script path                 (torque src/resmom/prolog.c)
//
// The image comes from the free-form `other` resource: `qsub -l other=image:pytorch:24.05`
// (Torque passes no -v variables to the prologue), or STRATA_CONTAINER_IMAGE in pbs_mom's own
// environment for site wrappers. `image:sha256:<digest>` names an image by digest.

import type { PrologArgs } from './prolog-args.js';

export interface TorquePrologue {
  job: string;
  user: string;
  group: string;
  resources: Map<string, string>;
  image?: string;
  jobWorkdir?: string;
}

/** The `other=` value that asks for an image: `image:REF`. */
export const TORQUE_IMAGE_PREFIX = 'image:';

export function torquePrologue(argv: string[], env: NodeJS.ProcessEnv): TorquePrologue {
  const [job = '', user = '', group = '', , resourceList = ''] = argv;
  const resources = parseResourceList(resourceList);
  const other = resources.get('other') ?? '';
  const image = other.startsWith(TORQUE_IMAGE_PREFIX) ? other.slice(TORQUE_IMAGE_PREFIX.length) : env.STRATA_CONTAINER_IMAGE;
  return { job, user, group, resources, image: image || undefined, jobWorkdir: env.PBS_O_WORKDIR || undefined };
}

/** `name=value,name=value` (values cannot hold commas: Torque joins them with commas). */
export function parseResourceList(text: string): Map<string, string> {
  const resources = new Map<string, string>();
  for (const item of text.split(',')) {
    const eq = item.indexOf('=');
    if (eq > 0) resources.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return resources;
}

export function torquePrologArgs(prologue: TorquePrologue, ids: { uid: number; gid: number }): PrologArgs {
  return {
    job: prologue.job,
    uid: ids.uid,
    gid: ids.gid,
    image: prologue.image,
    jobWorkdir: prologue.jobWorkdir,
    writable: true,
    timings: false,
  };
}

/**
 * Torque's prologue exit statuses (start_exec.c): 0 run the job, 1 abort it, >1 requeue it. The
 * epilogue's status is only logged (and may make Moab mark the node down).
 */
export const TORQUE_EXIT = { run: 0, abortJob: 1, requeue: 2 } as const;

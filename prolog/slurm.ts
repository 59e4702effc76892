#!/usr/bin/node
// Slurm Prolog (slurm.conf: Prolog=/usr/local/lib/strata/prolog/slurm.js, PrologFlags=Alloc).
// Slurm runs this as root with no PATH; values chosen at submit time arrive as SPANK_STRATA_*,
// set by strata's SPANK plugin with spank_job_control_setenv.

import { slurmJob } from '../src/scheduler/slurm-env.js';

const job = slurmJob(process.env);
// Most jobs have no container: loading the runtime only when there is one keeps their prolog at
// Node's own start-up time.
process.exitCode = job.image || job.imageDigest ? await (await import('../src/cli/commands/prolog.js')).prologCommand(job) : 0;

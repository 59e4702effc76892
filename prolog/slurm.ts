#!/usr/bin/node
// Slurm Prolog (slurm.conf: Prolog=/usr/local/lib/strata/prolog/slurm.js, PrologFlags=Alloc).
// Slurm runs this as root with no PATH; values chosen at submit time arrive as SPANK_STRATA_*,
// set by strata's SPANK plugin with spank_job_control_setenv.

import { prologCommand } from '../src/cli/commands/prolog.js';
import { slurmJob } from '../src/scheduler/slurm-env.js';

const job = slurmJob(process.env);
process.exitCode = job.image || job.imageDigest ? await prologCommand(job) : 0;

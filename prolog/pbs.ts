#!/usr/bin/node
// PBS (OpenPBS / PBS Pro) prolog entry point, run on every MoM of a job by strata's execjob_begin
// hook (etc/pbs/strata_mom.py), which passes the job's attributes in the environment
// (src/scheduler/pbs-env.ts). Exit 0: run the job; 2: user error (message on stderr; the hook
// deletes the job); other: node fault (the hook fails, and PBS offlines the node).
import { prologCommand } from '../src/cli/commands/prolog.js';
import { PBS_HOOK_USER_ERROR, pbsHookJob } from '../src/scheduler/pbs-env.js';

const job = pbsHookJob(process.env);
process.exitCode = job.image || job.imageDigest ? await prologCommand(job, process.env, { userError: PBS_HOOK_USER_ERROR }) : 0;

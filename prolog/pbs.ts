#!/usr/bin/node
// PBS (OpenPBS / PBS Pro) prolog entry point, run on every MoM of a job by strata's execjob_begin
// hook (etc/pbs/strata_hook.py), which passes the job's attributes in the environment
// (src/scheduler/pbs-env.ts). Exit 0: set up, or a user error recorded for the job on this host
// (the hook's execjob_launch puts it in the job's error file); other: node fault (the hook fails,
// and PBS offlines the node).
import { prologCommand } from '../src/cli/commands/prolog.js';
import { pbsHookJob } from '../src/scheduler/pbs-env.js';

const job = pbsHookJob(process.env);
process.exitCode = job.image || job.imageDigest ? await prologCommand(job, process.env) : 0;

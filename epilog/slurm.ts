#!/usr/bin/node
// Slurm Epilog: runs on every node of every job, whether the prolog ran or not.
import { epilogCommand } from '../src/cli/commands/epilog.js';
import { slurmJob } from '../src/scheduler/slurm-env.js';

process.exitCode = await epilogCommand({ job: slurmJob(process.env).job });

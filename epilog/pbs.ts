#!/usr/bin/node
// PBS epilog entry point, run by strata's execjob_end hook on every MoM, and by its
// exechost_startup/exechost_periodic reconciliation for jobs PBS no longer runs (PBS_JOBID).
// Exit 0: clean; 1: a node fault (the hook offlines the node).
import { epilogCommand } from '../src/cli/commands/epilog.js';

process.exitCode = await epilogCommand({ job: process.env.PBS_JOBID ?? '' });

#!/usr/bin/node
// Torque mom_priv/epilogue and epilogue.parallel (install both as symlinks to this file): $1 is
// the job id. Teardown works from the node's own journal, so it is right on every node, after a
// failed, killed or skipped prologue. Torque only logs a non-zero status (Moab may then mark the
// node down), which strata uses for node faults alone.
import { epilogCommand } from '../src/cli/commands/epilog.js';

process.exitCode = await epilogCommand({ job: process.argv[2] ?? '' });

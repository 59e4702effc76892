// Torque's mom_priv/prologue (mother superior) and prologue.parallel (sisters): run strata's
// prolog with what pbs_mom passes (src/scheduler/torque-args.ts) and answer in Torque's exit
// statuses: 0 run, 1 abort the job, 2 requeue it.
//
// A user error aborts the job from the mother superior's prologue, with the message on stderr
// (which Torque puts in the job's output). On a sister the same error is recorded for the job
// instead, and `strata exec` on that node prints it: a failed prologue.parallel fails the join
// as a system error, which would requeue the job over and over. A node fault requeues the job.

import { prologCommand } from '../src/cli/commands/prolog.js';
import { lookupGroup, lookupUser } from '../src/host/passwd.js';
import { TORQUE_EXIT, torquePrologArgs, torquePrologue } from '../src/scheduler/torque-args.js';

/** prologCommand's status for a user error when asked for one (the CLI's "2 = your input"). */
const USER_ERROR = 2;

export async function runTorquePrologue(argv: string[], env: NodeJS.ProcessEnv, role: 'mother-superior' | 'sister'): Promise<number> {
  const prologue = torquePrologue(argv, env);
  if (!prologue.image) return TORQUE_EXIT.run;
  const user = await lookupUser(prologue.user);
  const gid = prologue.group ? await lookupGroup(prologue.group) : user?.gid;
  if (!user || gid === undefined) {
    // pbs_mom itself resolved these names to start the job: a node that cannot is misconfigured.
    process.stderr.write(`strata: prologue: job ${prologue.job}: user "${prologue.user}" or group "${prologue.group}" is unknown on this node\n`);
    return TORQUE_EXIT.requeue;
  }
  const status = await prologCommand(torquePrologArgs(prologue, { uid: user.uid, gid }), env, role === 'mother-superior' ? { userError: USER_ERROR } : {});
  if (status === TORQUE_EXIT.run) return TORQUE_EXIT.run;
  return status === USER_ERROR && role === 'mother-superior' ? TORQUE_EXIT.abortJob : TORQUE_EXIT.requeue;
}

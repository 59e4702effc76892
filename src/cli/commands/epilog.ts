// `strata epilog` and the scheduler epilog entry points: remove every trace of the job on this
// node. Works from on-node state only (the journal), never from the environment, so it is right
// when the prolog never ran, ran half-way, or ran twice.

import { loadConfig } from '../../config/load.js';
import { asStrataError } from '../../errors.js';
import { commandLog } from '../../host/exec.js';
import { createLogger } from '../../log.js';
import { withMetrics } from '../../metrics/record.js';
import { teardownJob } from '../../runtime/job/teardown.js';
import { printTimings, PROCESS_OUTPUT, type Output } from './timings.js';
import { saveJobLayer } from '../../runtime/save/save.js';
import { tellJobUser } from '../../runtime/save/report.js';
import type { Config } from '../../config/types.js';
import type { Logger } from '../../log.js';

export async function epilogCommand(args: { job: string; timings?: boolean }, env: NodeJS.ProcessEnv = process.env, output: Output = PROCESS_OUTPUT): Promise<number> {
  const started = performance.now();
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0) {
    // Nothing can be torn down without root, and its log may not be writable: say so, not
    // "internal error" at the first root-only file. Failing drains the node, whose mounts stay.
    output.err(`strata: epilog: job ${args.job}: runs as uid ${uid}, not root; nothing was torn down. ${NOT_ROOT_HINT}\n`);
    return 1;
  }
  let config;
  try {
    config = await loadConfig(env);
  } catch (thrown) {
    output.err(`strata: epilog: job ${args.job}: ${asStrataError(thrown).summary}\n`);
    return 1;
  }
  const log = withMetrics(createLogger(config, { phase: 'epilog', job: args.job }), config, 'epilog');
  try {
    const timings: Record<string, number> = { config: performance.now() - started };
    await saveBeforeTeardown(args.job, config, log, env);
    const result = await teardownJob(args.job, config, timings);
    const durationMs = Math.round(performance.now() - started);
    if (result.leftBehind.length) log.warn('a process still wrote into the job\'s writable layer; left for strata node gc', { leftBehind: result.leftBehind });
    if (result.lazy.length) {
      log.warn('job torn down; some mounts were busy and lazily detached', { result: 'lazy', lazy: result.lazy, durationMs });
    } else {
      log.info(result.nothing ? 'nothing to tear down' : 'job torn down', { result: 'ok', steps: result.steps, durationMs });
    }
    if (args.timings) printTimings('epilog', timings, commandLog(), performance.now() - started, output);
    return 0;
  } catch (thrown) {
    const error = asStrataError(thrown);
    log.error('teardown failed', { result: 'node-error', code: error.code, error: error.summary, detail: error.detail, durationMs: Math.round(performance.now() - started) });
    output.err(`strata: epilog: job ${args.job}: ${error.summary}\n`);
    return error.kind === 'user' ? 0 : 1;
  }
}

/**
 * Slurm 24.11.5 (and every release before 25.11.4) ends each extern step by dropping slurmstepd's
 * privileges to the job's user for a moment, on another thread, even without --x11; with
 * PrologFlags=RunInJob an epilog forked in that moment runs as the job's user (Slurm's
 * run_command syncs the real uid to the effective one before exec).
 */
const NOT_ROOT_HINT = 'The epilog must run as root. With PrologFlags=RunInJob, Slurm before 25.11.4 starts it as the job\'s user now and then (SchedMD ticket 24439); drop RunInJob or upgrade Slurm, and clean the node with `strata node gc`.';

/**
 * --container-save, before the writable layer goes: never fails the epilog (a failed save is the
 * user's to hear about, in their job's output and in the log, not a node fault).
 */
async function saveBeforeTeardown(job: string, config: Config, log: Logger, env: NodeJS.ProcessEnv): Promise<void> {
  try {
    const outcome = await saveJobLayer(job, config);
    if (!outcome) return;
    if (outcome.result === 'not-set-up') {
      log.info('--container-save: the container was never set up on this node, nothing saved', { target: outcome.target });
    } else if (outcome.result === 'saved') {
      const { summary } = outcome;
      log.info('--container-save: writable layer saved', { target: outcome.target, digest: outcome.digest, entries: summary.entries, whiteouts: summary.whiteouts, opaqueDirs: summary.opaqueDirs, bytes: summary.bytes, skipped: summary.skipped.slice(0, 20), durationMs: outcome.durationMs });
      if (summary.skipped.length) await tellJobUser(env, outcome.user, `strata: --container-save ${outcome.target}: left out ${summary.skipped.length} entries: ${summary.skipped.slice(0, 5).join('; ')}`);
    } else {
      log.warn('--container-save failed', { code: outcome.error.code, target: outcome.target, error: outcome.error.summary });
      await tellJobUser(env, outcome.user, `strata: ${outcome.error.summary}`);
    }
  } catch (thrown) {
    log.warn('--container-save failed', { error: asStrataError(thrown).summary });
  }
}

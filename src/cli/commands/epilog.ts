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

export async function epilogCommand(args: { job: string; timings?: boolean }, env: NodeJS.ProcessEnv = process.env, output: Output = PROCESS_OUTPUT): Promise<number> {
  const started = performance.now();
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

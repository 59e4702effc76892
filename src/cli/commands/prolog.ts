// `strata prolog` and the Slurm/PBS prolog entry points: run the node prolog for one job, log one
// line about it, and map the outcome to the exit status the scheduler understands
// (0 = the node is fine, even if the job's set-up failed for a user-caused reason).

import { loadConfig } from '../../config/load.js';
import { parseSize } from '../../config/validate.js';
import { asStrataError, printable, userError } from '../../errors.js';
import { commandLog } from '../../host/exec.js';
import { createLogger } from '../../log.js';
import { withMetrics } from '../../metrics/record.js';
import { parseDeviceRequests } from '../../runtime/devices/requests.js';
import { parseMountRequests } from '../../runtime/job/request.js';
import { recordJobError, runProlog, type PrologRequest } from '../../runtime/job/prolog.js';
import { teardownJob } from '../../runtime/job/teardown.js';
import { printTimings, PROCESS_OUTPUT, type Output } from './timings.js';
import type { PrologArgs, PrologExit } from '../../scheduler/prolog-args.js';

export type { PrologArgs, PrologExit };

/** `output` receives what the scheduler's log shows (the node agent collects it per request). */
export async function prologCommand(args: PrologArgs, env: NodeJS.ProcessEnv = process.env, exit: PrologExit = {}, output: Output = PROCESS_OUTPUT): Promise<number> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  let config;
  try {
    config = await loadConfig(env);
  } catch (thrown) {
    // Without a config there is no log file: stderr reaches slurmd's log.
    output.err(`strata: prolog: job ${args.job}: ${asStrataError(thrown).summary}\n`);
    return 1;
  }
  timings.config = performance.now() - started;
  const log = withMetrics(createLogger(config, { phase: 'prolog', job: args.job }), config, 'prolog', timings);
  try {
    const request = toRequest(args);
    const outcome = await runProlog(request, config, timings, args.dryRun);
    if (outcome.result === 'dry-run') {
      output.out(`${JSON.stringify(outcome.plan, null, 2)}\n`);
      return 0;
    }
    const durationMs = Math.round(performance.now() - started);
    if (outcome.result === 'user-error') {
      log[outcome.error.kind === 'internal' ? 'error' : 'warn']('job set-up failed', { result: 'user-error', code: outcome.error.code, error: outcome.error.summary, detail: outcome.error.detail, durationMs });
      if (exit.userError) {
        // The scheduler fails the job with this message itself: the error file has no reader.
        await teardownJob(args.job, config).catch(() => undefined);
        output.err(`strata: prolog: job ${args.job}: ${outcome.error.summary}\n`);
        return exit.userError;
      }
    } else {
      log.info(outcome.result === 'no-image' ? 'no container requested' : 'rootfs ready', { ...outcome, durationMs, lockWaitMs: timings['lock wait'] });
    }
    if (args.timings) printTimings('prolog', timings, commandLog(), performance.now() - started, output);
    return 0;
  } catch (thrown) {
    const error = asStrataError(thrown);
    const durationMs = Math.round(performance.now() - started);
    if (error.kind === 'user') {
      // Bad arguments (job id, sizes, mount syntax) before anything was set up.
      log.warn('job set-up refused (user error)', { result: 'user-error', code: error.code, error: error.summary, durationMs });
      output.err(`strata: prolog: job ${args.job}: ${error.summary}\n`);
      if (exit.userError) return exit.userError;
      // Recorded like a set-up failure, so that the job fails with it rather than runs without its container.
      if (error.code !== 'E_BAD_JOB') recordJobError(args.job, error.summary, config);
      return 0;
    }
    log.error('node fault', { result: 'node-error', code: error.code, error: error.summary, detail: error.detail, durationMs });
    output.err(`strata: prolog: job ${args.job}: ${error.summary}\n`);
    return 1;
  }
}

/** The prolog's request; a malformed `--devices` fails the job here, before anything is set up. */
export function toRequest(args: PrologArgs): PrologRequest {
  for (const [name, value] of [['uid', args.uid], ['gid', args.gid]] as const) {
    // 4294967295 is (uid_t)-1, "no id" to the kernel.
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32 - 1) {
      throw userError('E_BAD_JOB', `job ${args.job}: missing or invalid ${name} ${JSON.stringify(value)}`, { hint: 'the scheduler must pass the job\'s numeric uid and gid (0 to 4294967294)' });
    }
  }
  if (args.workdir && (!args.workdir.startsWith('/') || /[\x00-\x1f\x7f]/.test(args.workdir))) {
    throw userError('E_BAD_WORKDIR', printable(`--container-workdir "${args.workdir}" is not an absolute path`), { hint: 'give the working directory inside the container as an absolute path, e.g. /work' });
  }
  let upperSize: number | undefined;
  if (args.upperSize) {
    upperSize = parseSize(args.upperSize);
    if (upperSize === undefined) {
      throw userError('E_UPPER_SIZE', `invalid --container-upper-size "${args.upperSize}"`, { hint: 'use a size such as 512M or 4G' });
    }
  }
  return {
    jobId: args.job,
    uid: args.uid,
    gid: args.gid,
    image: args.image || undefined,
    imageDigest: args.imageDigest || undefined,
    mounts: parseMountRequests(args.mounts, { relativeTo: args.jobWorkdir }),
    workdir: args.workdir || undefined,
    jobWorkDir: args.jobWorkdir || undefined,
    writable: args.writable ?? true,
    upperSize,
    devices: parseDeviceRequests(args.devices),
    mountHome: args.mountHome,
    entrypoint: args.entrypoint,
    remapRoot: args.remapRoot,
    ...(args.slurmClient ? { slurmClient: true } : {}),
    save: args.save || undefined,
  };
}

// `strata node agent`: the resident node agent (src/runtime/agent, docs/architecture.md). A
// long-lived root process that runs the Slurm prolog and epilog in-process for the front-ends
// (front/strata-front.c), so that a container job's prolog and epilog do not pay Node's start-up.
// Each request runs exactly what prolog/slurm.ts and epilog/slurm.ts run, with the job's
// environment, its own mount executor and its own output (src/host/job-context.ts).

import { lstatSync, mkdirSync, chmodSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { configSource, loadConfig } from '../../config/load.js';
import { nodeError } from '../../errors.js';
import { jobContext, newJobContext } from '../../host/job-context.js';
import { MountHelper, mountHelperPath, prestartExecutors, releaseRunExecutor } from '../../host/mount-helper.js';
import { createLogger } from '../../log.js';
import { installedFiles, watchFiles } from '../../runtime/agent/fingerprint.js';
import type { AgentReply, AgentRequest } from '../../runtime/agent/frames.js';
import { serveAgent } from '../../runtime/agent/server.js';
import { slurmJob } from '../../scheduler/slurm-env.js';
import { agentRunEnv } from '../../test-switches.js';
import { epilogCommand } from './epilog.js';
import { prologCommand } from './prolog.js';

/** Mount executors started with the agent: 8 job starts at once find theirs ready. */
const PRESTARTED_EXECUTORS = 8;

/** The agent's socket, in a directory only root may enter: `<runtime_dir>/agent/sock`. */
export const agentSocket = (runtimeDir: string) => join(runtimeDir, 'agent', 'sock');

export async function nodeAgentCommand(): Promise<number> {
  if (process.getuid?.() !== 0) throw nodeError('E_AGENT', 'the node agent runs as root', { hint: 'start it from the strata-agent systemd unit (strata install-slurm)' });
  const config = await loadConfig();
  // What slurmd gives its prologs; no request depends on where the agent was started from.
  process.umask(0o022);
  process.chdir('/');
  const dist = dirname(dirname(realpathSync(process.argv[1])));
  const socketPath = agentSocket(config.runtimeDir);
  const dir = dirname(socketPath);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  if (!info.isDirectory() || info.uid !== 0) throw nodeError('E_AGENT', `${dir} is not a directory owned by root`, { hint: 'remove it; the agent makes it' });
  chmodSync(dir, 0o700);
  // One agent per node: a second one would take the first one's socket over.
  // (Its own executor, not the node lock's queue, which the jobs' lock takers share.)
  const executorPath = mountHelperPath();
  const lock = executorPath ? new MountHelper(executorPath) : undefined;
  const held = await lock?.request(['lock', join(dir, 'lock'), 1000]).catch(() => undefined);
  if (lock && !held?.ok) throw nodeError('E_AGENT', `another node agent holds ${join(dir, 'lock')}`, { hint: 'see `systemctl status strata-agent`' });
  // Executors ready for a burst of job starts (each run holds its own, with its node lock).
  prestartExecutors(PRESTARTED_EXECUTORS);
  const log = createLogger(config, { phase: 'agent' });
  let stopped: string | undefined;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => (stopped = signal));
  const installed = watchFiles([...installedFiles(dist), configSource(process.env).path]);
  const code = await serveAgent({
    socketPath,
    gatePath: join(dist, 'helper/strata-agent-gate'),
    handle: runRequest,
    changed: () => stopped ?? installed(),
    note: (event, meta) => log.info(event, meta),
    checkEveryMs: 500,
  });
  await lock?.close();
  // Exit now even with requests in flight (the gate failed): their front-ends run them again.
  process.exit(code);
}

/** One prolog or epilog, as the Slurm entry points run it, with this request's environment. */
export function runRequest(request: AgentRequest): Promise<AgentReply> {
  const env = agentRunEnv(request.env);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const output = { out: (text: string) => stdout.push(text), err: (text: string) => stderr.push(text) };
  return jobContext.run(newJobContext(env), async () => {
    try {
      const job = slurmJob(env);
      let status = 0;
      if (request.phase === 'epilog') status = await epilogCommand({ job: job.job }, env, output);
      else if (job.image || job.imageDigest) status = await prologCommand(job, env, {}, output);
      return { status, stdout: stdout.join(''), stderr: stderr.join('') };
    } finally {
      // Given back while the reply goes out: its front-end does not wait for one more round trip.
      void releaseRunExecutor();
    }
  });
}

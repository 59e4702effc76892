// What one prolog or epilog run owns, when several run in one process (the resident node agent,
// src/runtime/agent): its environment, the commands it ran (for --timings) and its own mount
// executor. A separate prolog process owns all of these by being a process; in the agent, each
// request runs inside `jobContext.run(...)` and the few process-global places read from here
// instead. Outside a context (every separate process) everything is exactly as before.

import { AsyncLocalStorage } from 'node:async_hooks';

export interface JobContext {
  /** The job's environment, as slurmd gave it to the front-end. */
  env: NodeJS.ProcessEnv;
  /** Commands and mount-executor requests of this run, with durations. */
  commands: { command: string; durationMs: number }[];
  /** Per-run state keyed by its owner (the run's mount executor, per-run caches). */
  owned: Map<object, unknown>;
}

export const jobContext = new AsyncLocalStorage<JobContext>();

export function newJobContext(env: NodeJS.ProcessEnv): JobContext {
  return { env, commands: [], owned: new Map() };
}

/** The environment of the run in progress: the job's in the agent, else this process's. */
export function currentEnv(): NodeJS.ProcessEnv {
  return jobContext.getStore()?.env ?? process.env;
}

/**
 * A value that belongs to the run in progress: one per agent request, one per process otherwise.
 * `make` creates it on first use; `key` identifies the kind of value.
 */
export function perRun<T>(key: object, make: () => T): T {
  const context = jobContext.getStore();
  if (!context) {
    const owned = processOwned.get(key);
    if (owned !== undefined) return owned as T;
    const made = make();
    processOwned.set(key, made);
    return made;
  }
  if (!context.owned.has(key)) context.owned.set(key, make());
  return context.owned.get(key) as T;
}
const processOwned = new Map<object, unknown>();

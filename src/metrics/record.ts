// Adds one prolog/epilog run to the node's metrics textfile (`metrics.textfile`). On the prolog's
// hot path, so: no child process, a few small synchronous file operations (well under 1 ms), and
// never an error that reaches the job: metrics are best effort.
//
// Counters live in the textfile itself, so concurrent runs must not lose each other's increments:
// the read-modify-write happens under <runtime_dir>/metrics.lock, a file created with O_EXCL that
// holds the holder's pid. A holder killed inside the (sub-millisecond) critical section is seen to
// be dead from its pid and its lock is taken over. The file is replaced by rename, so node
// exporter never reads half a file.

import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';
import { errnoCode } from '../errors.js';
import { addRun, parseSamples, render, type Phase, type RunSample } from './textfile.js';

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/**
 * Make `log` also record a metrics sample whenever it writes a run's result line (one with
 * `result` and `durationMs`): the per-job log line and the sample come from the same place and
 * cannot disagree. `timings.metrics` gets what recording cost (for --timings).
 */
export function withMetrics<L extends object>(log: L, config: Pick<Config, 'metrics' | 'runtimeDir'>, phase: Phase, timings?: Record<string, number>): L {
  if (!config.metrics.textfile) return log;
  const methods = log as unknown as Record<(typeof LEVELS)[number], (message: string, meta?: Record<string, unknown>) => unknown>;
  for (const level of LEVELS) {
    const write = methods[level].bind(log);
    methods[level] = (message, meta) => {
      const result = write(message, meta);
      if (typeof meta?.result === 'string' && typeof meta.durationMs === 'number') {
        const started = performance.now();
        const problem = recordRun(config, { phase, result: meta.result, durationMs: meta.durationMs, layers: typeof meta.layers === 'number' && !meta.again ? meta.layers : undefined });
        if (timings) timings.metrics = performance.now() - started;
        if (problem) write('metrics not recorded', { error: problem });
      }
      return result;
    };
  }
  return log;
}

/** Longest we wait for another run's update before giving up on this sample (ms). */
const LOCK_WAIT_MS = 1000;

/** Record a run when metrics are configured. Returns why it was not recorded, if it was not. */
export function recordRun(config: Pick<Config, 'metrics' | 'runtimeDir'>, run: RunSample): string | undefined {
  const file = config.metrics.textfile;
  if (!file) return undefined;
  try {
    mkdirSync(config.runtimeDir, { recursive: true, mode: 0o755 });
    const lock = join(config.runtimeDir, 'metrics.lock');
    if (!takeLock(lock)) return `metrics lock ${lock} busy for ${LOCK_WAIT_MS} ms`;
    try {
      updateTextfile(file, run);
    } finally {
      unlinkSync(lock);
    }
    return undefined;
  } catch (error) {
    return `cannot update ${file}: ${errnoCode(error) ?? (error instanceof Error ? error.message : String(error))}`;
  }
}

export function updateTextfile(file: string, run: RunSample) {
  let previous = '';
  try {
    previous = readFileSync(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
  }
  // node exporter reads *.prom only, so the temporary name is never collected.
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, render(addRun(parseSamples(previous), run)));
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

function takeLock(lock: string): boolean {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx', 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
    const holder = readHolder(lock);
    // A holder that died inside its critical section: take the lock over, unless someone else
    // just did (the pid would then be theirs, and alive).
    if (holder !== undefined && !existsSync(`/proc/${holder}`) && readHolder(lock) === holder) {
      try {
        unlinkSync(lock);
      } catch {
        // gone already
      }
      continue;
    }
    if (Date.now() > deadline) return false;
    Atomics.wait(pause, 0, 0, 1);
  }
}

function readHolder(lock: string): number | undefined {
  try {
    const pid = Number(readFileSync(lock, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

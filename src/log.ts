// Structured logging: one JSON line per event, appended synchronously to the configured file so
// that a line is on disk even if the scheduler SIGKILLs us right after. Nothing goes to stdout.
// The lines are winston's JSON format ({...meta, level, message, timestamp}), written here
// directly: loading winston cost the prolog and the epilog ~30 ms of start-up each
// (docs/performance.md), for one line per run. With log.syslog the same lines also go to the
// local syslog socket (src/host/syslog.ts). Values of keys that could hold secrets are redacted at
// any depth, and environments are never logged.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import type { Config, LogLevel } from './config/types.js';
import { SyslogWriter } from './host/syslog.js';
import { currentEnv, jobContext } from './host/job-context.js';

const SEVERITY: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type Logger = Record<LogLevel, (message: string, meta?: Record<string, unknown>) => void>;

export function createLogger(config: Pick<Config, 'log'>, defaults: Record<string, unknown> = {}, syslog?: SyslogWriter): Logger {
  const file = config.log.file;
  if (file) {
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    } catch {
      // Reported by `strata doctor`; logging is best effort.
    }
  }
  const toSyslog = config.log.syslog ? syslog ?? processSyslog() : undefined;
  const write = (level: LogLevel, line: string) => {
    toSyslog?.write(level, line.trimEnd());
    try {
      if (file) appendFileSync(file, line, { mode: 0o640 });
      else if (!toSyslog) process.stderr.write(line);
    } catch {
      // A full or read-only log disk must never fail a job or drain a node.
    }
  };
  // `via: agent`: the run was served by the node agent (src/runtime/agent), not its own process.
  const base = { node: hostname(), ...(jobContext.getStore() ? { via: 'agent' } : {}), ...defaults };
  const at = (level: LogLevel) => (message: string, meta: Record<string, unknown> = {}) => {
    if (SEVERITY[level] > SEVERITY[config.log.level]) return;
    write(level, `${JSON.stringify({ ...base, ...redact(meta), level, message, timestamp: new Date().toISOString() })}\n`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/** Keys whose values are never logged (auth tokens, passwords, whole environments). */
const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|credential|^env$|^environment$/i;

/** `meta` with the values of secret-looking keys replaced, at any depth. */
export function redact(meta: Record<string, unknown>): Record<string, unknown> {
  const clean = (value: unknown, depth: number): unknown => {
    if (depth > 4 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((item) => clean(item, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, SECRET_KEY.test(key) ? '[redacted]' : clean(inner, depth + 1)]));
  };
  return clean(meta, 0) as Record<string, unknown>;
}

function hostname(): string {
  return currentEnv().SLURMD_NODENAME ?? osHostname();
}

// One logger(1) child per process: the node agent creates a logger per request.
let sharedSyslog: SyslogWriter | undefined;
const processSyslog = () => (sharedSyslog ??= new SyslogWriter());

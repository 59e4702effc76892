// Structured logging: one JSON line per event, appended synchronously to the configured file so
// that a line is on disk even if the scheduler SIGKILLs us right after. Nothing goes to stdout.
// The lines are winston's JSON format ({...meta, level, message, timestamp}), written here
// directly: loading winston cost the prolog and the epilog ~30 ms of start-up each
// (docs/performance.md), for one line per run.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import type { Config, LogLevel } from './config/types.js';

const SEVERITY: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type Logger = Record<LogLevel, (message: string, meta?: Record<string, unknown>) => void>;

export function createLogger(config: Pick<Config, 'log'>, defaults: Record<string, unknown> = {}): Logger {
  const file = config.log.file;
  if (file) {
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    } catch {
      // Reported by `strata doctor`; logging is best effort.
    }
  }
  const write = (line: string) => {
    try {
      if (file) appendFileSync(file, line, { mode: 0o640 });
      else process.stderr.write(line);
    } catch {
      // A full or read-only log disk must never fail a job or drain a node.
    }
  };
  const base = { node: hostname(), ...defaults };
  const at = (level: LogLevel) => (message: string, meta: Record<string, unknown> = {}) => {
    if (SEVERITY[level] > SEVERITY[config.log.level]) return;
    write(`${JSON.stringify({ ...base, ...meta, level, message, timestamp: new Date().toISOString() })}\n`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

function hostname(): string {
  return process.env.SLURMD_NODENAME ?? osHostname();
}

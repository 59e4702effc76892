// Structured logging: one JSON line per event, appended synchronously to the configured file so
// that a line is on disk even if the scheduler SIGKILLs us right after, and (log.syslog) to the
// local syslog socket. Every line carries node, phase and job; nothing goes to stdout. Values of
// keys that could hold secrets are redacted, and environments are never logged.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Config } from './config/types.js';
import { SyslogWriter } from './host/syslog.js';

const MESSAGE = Symbol.for('message');

class AppendFileTransport extends Transport {
  constructor(private readonly file: string, options: Transport.TransportStreamOptions) {
    super(options);
  }
  override log(info: Record<string | symbol, unknown>, next: () => void) {
    try {
      appendFileSync(this.file, `${String(info[MESSAGE])}\n`, { mode: 0o640 });
    } catch {
      // A full or read-only log disk must never fail a job or drain a node.
    }
    next();
  }
}

class SyslogTransport extends Transport {
  constructor(private readonly writer: SyslogWriter, options: Transport.TransportStreamOptions) {
    super(options);
  }
  override log(info: Record<string | symbol, unknown>, next: () => void) {
    this.writer.write(String(info.level), String(info[MESSAGE]));
    next();
  }
}

/** Keys whose values are never logged (auth tokens, passwords, whole environments). */
const SECRET_KEY = /token|secret|password|passwd|authorization|cookie|credential|^env$|^environment$/i;

/** Redact secret-looking fields, at any depth, before a line is formatted. */
export const redact = winston.format((info) => {
  const clean = (value: unknown, depth: number): unknown => {
    if (depth > 4 || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((item) => clean(item, depth + 1));
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, SECRET_KEY.test(key) ? '[redacted]' : clean(inner, depth + 1)]));
  };
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message') continue;
    (info as Record<string, unknown>)[key] = SECRET_KEY.test(key) ? '[redacted]' : clean(info[key], 1);
  }
  return info;
});

export type Logger = winston.Logger;

export function createLogger(config: Pick<Config, 'log'>, defaults: Record<string, unknown> = {}, syslog?: SyslogWriter): Logger {
  const transports: Transport[] = [];
  if (config.log.file) {
    try {
      mkdirSync(dirname(config.log.file), { recursive: true, mode: 0o755 });
    } catch {
      // Reported by `strata doctor`; logging is best effort.
    }
    transports.push(new AppendFileTransport(config.log.file, {}));
  }
  if (config.log.syslog) transports.push(new SyslogTransport(syslog ?? new SyslogWriter(), {}));
  if (!transports.length) {
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }));
  }
  return winston.createLogger({
    level: config.log.level,
    format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.json()),
    defaultMeta: { node: hostname(), ...defaults },
    transports,
  });
}

function hostname(): string {
  return process.env.SLURMD_NODENAME ?? osHostname();
}

// Structured logging: one JSON line per event, appended synchronously to the configured file so
// that a line is on disk even if the scheduler SIGKILLs us right after. Nothing goes to stdout.

import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostname as osHostname } from 'node:os';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Config } from './config/types.js';

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

export type Logger = winston.Logger;

export function createLogger(config: Pick<Config, 'log'>, defaults: Record<string, unknown> = {}): Logger {
  const transports: Transport[] = [];
  if (config.log.file) {
    try {
      mkdirSync(dirname(config.log.file), { recursive: true, mode: 0o755 });
    } catch {
      // Reported by `strata doctor`; logging is best effort.
    }
    transports.push(new AppendFileTransport(config.log.file, {}));
  } else {
    transports.push(new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }));
  }
  return winston.createLogger({
    level: config.log.level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { node: hostname(), ...defaults },
    transports,
  });
}

function hostname(): string {
  return process.env.SLURMD_NODENAME ?? osHostname();
}

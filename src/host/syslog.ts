// Log lines to the local syslog socket (/dev/log: journald or rsyslog). Node cannot send Unix
// datagrams (dgram is UDP only, net is stream only), so the lines go through one logger(1) child
// per process, started at the first line: each line is written to its stdin with its own priority
// prefix, and logger sends it as one datagram. The child is unreferenced and holds none of our
// stdio; it sees EOF when we exit (however we exit) and exits too. Best effort: a missing socket
// or logger never fails anything.

import { spawn, type ChildProcess } from 'node:child_process';
import { TOOLS } from './tools.js';

/** syslog severities (RFC 5424) of strata's log levels. */
const SEVERITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };
/** Facility daemon (3). */
const FACILITY = 3;

export const DEFAULT_SYSLOG_SOCKET = '/dev/log';

export class SyslogWriter {
  private child?: ChildProcess;
  private failed = false;

  constructor(private readonly socket = DEFAULT_SYSLOG_SOCKET, private readonly tag = 'strata') {}

  write(level: string, line: string) {
    if (this.failed) return;
    const child = this.child ?? this.start();
    if (!child?.stdin) return;
    const priority = FACILITY * 8 + (SEVERITY[level] ?? 6);
    // One line per message: a newline inside would split it in two.
    child.stdin.write(`<${priority}>${line.replace(/\n/g, ' ')}\n`);
  }

  /** Flush and stop the child (tests; a normal process just exits). */
  close(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('close', () => resolve());
      child.stdin?.end();
    });
  }

  private start(): ChildProcess | undefined {
    try {
      const child = spawn(TOOLS.logger, ['--prio-prefix', '--socket-errors=off', '-u', this.socket, '-t', this.tag, `--id=${process.pid}`], {
        stdio: ['pipe', 'ignore', 'ignore'],
        env: { PATH: '/usr/bin:/bin' },
      });
      child.on('error', () => (this.failed = true));
      child.stdin.on('error', () => (this.failed = true));
      // Neither the child nor its pipe keeps us alive; pending writes still complete.
      child.unref();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      this.child = child;
      return child;
    } catch {
      this.failed = true;
      return undefined;
    }
  }
}

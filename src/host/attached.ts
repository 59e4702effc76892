// Run a program attached to this process's terminal (stdin, stdout, stderr inherited) and report
// how it ended as a shell would: its exit status, or 128 + the signal that killed it. Signals sent
// to us are passed on, so `scancel`/`qdel` and Ctrl-C reach the program.

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { nodeError } from '../errors.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGCONT'];

export function runAttached(argv: string[], options: { env: Record<string, string>; cwd?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: options.env, cwd: options.cwd, stdio: 'inherit' });
    // At a terminal, Ctrl-C and Ctrl-\ already reach the program (same process group): passing
    // them on again would deliver them twice.
    const fromTerminal = process.stdin.isTTY ? new Set<NodeJS.Signals>(['SIGINT', 'SIGQUIT']) : new Set<NodeJS.Signals>();
    const forward = (signal: NodeJS.Signals) => {
      if (!fromTerminal.has(signal)) child.kill(signal);
    };
    for (const signal of FORWARDED) process.on(signal, forward);
    const done = () => {
      for (const signal of FORWARDED) process.off(signal, forward);
    };
    child.on('error', (error) => {
      done();
      reject(nodeError('E_EXEC', `cannot run ${argv[0]}: ${error.message}`, { hint: 'install util-linux', cause: error }));
    });
    child.on('close', (code, signal) => {
      done();
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

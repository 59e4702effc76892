// Starting the writing half of a store write as the store's owner: through sudo for a user (the
// site's sudoers rule allows exactly `<strata> _store-write`, no arguments: the request travels on
// stdin), through setpriv for root. Its stderr is ours, so its messages and progress reach the
// terminal; stdin/stdout carry the relay (store/write/relay/*).

import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeError } from '../errors.js';
import type { WriterProcess } from '../store/write/relay/caller.js';
import { SAFE_PATH, TOOLS } from './tools.js';
import { asUserCommand, type JobUser } from './as-user.js';

/** `asUser`: root starts the sudo as that user (the epilog saving a job's layer into the user's namespace). */
export type WriterLaunch = { how: 'sudo'; ownerUid: number; asUser?: JobUser } | { how: 'setpriv'; ownerUid: number; ownerGid: number };

/**
 * The strata executable this process runs from: the writer must be the same program. A scheduler
 * entry point (the epilog saving a job's layer) is not the CLI: then the CLI of the same build, next
 * to it (bundled: dist/chunks → dist/bin; from the sources: src/host → dist/bin).
 */
export function strataExecutable(): string {
  const running = realpathSync(process.argv[1]);
  if (basename(running) === 'strata.js' || basename(running) === 'strata') return running;
  for (const relative of ['../bin/strata.js', '../../dist/bin/strata.js']) {
    const candidate = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(candidate)) return realpathSync(candidate);
  }
  return running;
}

/** The command line that starts the writer (also shown in messages about the sudoers rule). */
export function writerCommand(launch: WriterLaunch, executable = strataExecutable()): string[] {
  if (launch.how === 'sudo') {
    const sudo = [TOOLS.sudo, '--non-interactive', '-u', `#${launch.ownerUid}`, '--', executable, '_store-write'];
    return launch.asUser ? asUserCommand(launch.asUser, sudo) : sudo;
  }
  return [TOOLS.setpriv, `--reuid=${launch.ownerUid}`, `--regid=${launch.ownerGid}`, '--clear-groups', '--', process.execPath, executable, '_store-write'];
}

export function startStoreWriter(launch: WriterLaunch): WriterProcess {
  const [command, ...args] = writerCommand(launch);
  // A minimal environment: the writer must not act on the caller's (sudo would reset it anyway).
  // SUDO_* is what tells a writer whose namespace it writes: never hand down root's own.
  const env: NodeJS.ProcessEnv = { PATH: SAFE_PATH, LC_ALL: 'C' };
  for (const key of ['STRATA_CONFIG', 'TERM']) if (process.env[key]) env[key] = process.env[key];
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', (error) => reject(nodeError('E_EXEC', `cannot run ${command}: ${error.message}`, { hint: command === TOOLS.sudo ? 'install sudo (Debian: apt-get install sudo)' : 'check the host installation', cause: error })));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  exit.catch(() => undefined);
  return { stdin: child.stdin, stdout: child.stdout, exit };
}

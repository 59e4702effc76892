// Running a program with a job user's credentials, from root (the epilog): anything that opens,
// creates or renames a path the user chose (a --container-save file) runs as them, so the user's
// own permissions decide what it reaches and a link they planted leads only where they could go.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { SAFE_PATH, TOOLS } from './tools.js';

export interface JobUser {
  uid: number;
  gid: number;
}

/** The command line that runs `command` as the user (with their supplementary groups). */
export function asUserCommand(user: JobUser, command: readonly string[]): string[] {
  return [TOOLS.setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--inh-caps=-all', '--', ...command];
}

/** Starts `command` as the user in a minimal environment; its stderr is collected (last 4 KiB). */
export function spawnAsUser(user: JobUser, command: readonly string[], stdio: StdioOptions): { child: ChildProcess; stderr: () => string; exit: Promise<number> } {
  const [program, ...args] = asUserCommand(user, command);
  const child = spawn(program, args, { env: { PATH: SAFE_PATH, LC_ALL: 'C' }, stdio, cwd: '/' });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-4096)));
  const exit = new Promise<number>((resolve) => {
    child.on('error', (error) => {
      errors += error.message;
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  return { child, stderr: () => errors, exit };
}

/** Runs a short command as the user; resolves with its exit status and stderr. */
export async function runAsUser(user: JobUser, command: readonly string[]): Promise<{ status: number; stderr: string }> {
  const run = spawnAsUser(user, command, ['ignore', 'ignore', 'pipe']);
  const status = await run.exit;
  return { status, stderr: run.stderr() };
}

// The one place strata runs short commands: a tool that runs to completion and whose output is
// read whole (mount(8), losetup, unsquashfs -stat, ...). Every call names its tool by absolute path
// (TOOLS), collects output, and turns a failure into a StrataError that carries the command and
// stderr. Processes of other shapes start in their own modules, each for its reason
// (docs/decisions.md, "Programs start in src/host/ only"):
//   host/tool-stream.ts      streams of up to tens of GB between several children (layer build,
//                            sqfs2tar), all killed on the first failure
//   host/mount-helper.ts     the long-lived mount executor, one request and one reply per line
//   host/node-lock.ts        flock(1) holding the node lock while this process lives (no helper)
//   host/as-user.ts          programs with a job user's identity, on paths the user chose
//   host/store-writer.ts     the store's writing half through sudo or setpriv, its stdio a relay
//   host/upper-walk.ts       the walker of a job's writable layer, streaming records
//   host/attached.ts         a program on the user's terminal (`strata exec`), signals passed on
//   host/syslog.ts           one logger(1) per process: Node cannot send Unix datagrams
//   runtime/agent/server.ts  the node agent's socket gate, a child for the agent's whole life
//   registry/auth.ts         a credentials file's password command, in the user's own shell
//   doctor/gather.ts         `slurmd -V` / `sinfo -V` found on PATH, as the admin would run them
// test/unit/spawners.test.ts fails when a module starts processes without being named here.

import type { ErrorCode } from '../error-codes.js';
import { spawn } from 'node:child_process';
import { nodeError, StrataError, firstLine } from '../errors.js';
import { SAFE_PATH, TOOLS, type Tool } from './tools.js';
import { jobContext } from './job-context.js';

export interface RunOptions {
  cwd?: string;
  /** Kill the child after this long (ms). */
  timeoutMs?: number;
  /** Extra environment (added to a minimal PATH-only environment). */
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  durationMs: number;
  command: string;
}

/** Commands run so far in this process, with durations: the `--timings` breakdown reads this. */
export const execLog: { command: string; durationMs: number }[] = [];

/** The commands of the run in progress (one agent request, or this whole process). */
export const commandLog = () => jobContext.getStore()?.commands ?? execLog;

/** Note one command for `--timings`. */
export function recordCommand(command: string, durationMs: number) {
  commandLog().push({ command, durationMs });
}

const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** Run a tool and resolve with its result whatever the exit code. Rejects only if it cannot start. */
export function runTool(tool: Tool, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [TOOLS[tool], ...args].map(quote).join(' ');
  const started = performance.now();
  return new Promise((resolve, reject) => {
    // stdin is closed and nothing is inherited: a child must never hold the prolog's stdout/stderr.
    const child = spawn(TOOLS[tool], args, {
      cwd: options.cwd,
      env: { PATH: SAFE_PATH, LC_ALL: 'C', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) =>
      reject(nodeError('E_EXEC', `cannot run ${TOOLS[tool]}: ${error.message}`, {
        hint: `install it (Debian: apt-get install ${packageOf(tool)})`,
        cause: error,
      })),
    );
    child.on('close', (code, signal) => {
      const durationMs = performance.now() - started;
      recordCommand(command, durationMs);
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        exitCode: code ?? (signal ? 128 : 1),
        durationMs,
        command,
      });
    });
  });
}

/** Run a tool; a non-zero exit becomes a node error naming the command and its first stderr line. */
export async function mustRun(tool: Tool, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await runTool(tool, args, options);
  if (result.exitCode !== 0) throw commandFailed(result);
  return result;
}

export function commandFailed(result: RunResult, kind: StrataError['kind'] = 'node', code: ErrorCode = 'E_COMMAND'): StrataError {
  const why = firstLine(result.stderr) || `exit status ${result.exitCode}`;
  return new StrataError(kind, code, `${result.command.split(' ')[0]} failed: ${why}`, {
    detail: `$ ${result.command}\n${result.stderr}`,
  });
}

function packageOf(tool: Tool): string {
  const packages: Partial<Record<Tool, string>> = {
    tar2sqfs: 'squashfs-tools-ng',
    rdsquashfs: 'squashfs-tools-ng',
    unsquashfs: 'squashfs-tools',
    zstd: 'zstd',
    xz: 'xz-utils',
  };
  return packages[tool] ?? 'util-linux';
}

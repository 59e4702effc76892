// Programs whose output is a stream (the layer build's tar, zstd/xz, tar2sqfs; sqfs2tar reading a
// squashfs file): started with absolute paths and a minimal environment, stderr kept for the
// message, and judged when they end. The streaming half of the host seam: a layer can be tens of
// GB, where exec.ts collects the output of short commands.

import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { StrataError, errnoCode, nodeError, userError } from '../errors.js';
import { SAFE_PATH } from './tools.js';

const STDERR_LIMIT = 64 * 1024;
/** What a tool's piped stdout may run ahead of its reader, in bytes (then the tool waits). */
const STDOUT_BUFFER = 1024 * 1024;

export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** A spawned helper with its stderr collected and its exit awaited. */
export interface ToolProcess {
  tool: string;
  process: ChildProcess;
  /** Its output when piped: read this, never `process.stdout` (see startTool). */
  stdout?: Readable;
  stderr: () => string;
  exit: Promise<ToolExit>;
  killedByUs: boolean;
}

export function startTool(tool: string, args: string[], stdio: ['pipe' | 'ignore', 'pipe' | 'ignore', 'pipe']): ToolProcess {
  const process = spawn(tool, args, { stdio, env: { PATH: SAFE_PATH, LC_ALL: 'C' } });
  let stderr = '';
  process.stderr?.setEncoding('utf8');
  process.stderr?.on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const exit = new Promise<ToolExit>((resolve) => {
    process.once('error', (error) => resolve({ code: null, signal: null, error }));
    process.once('close', (code, signal) => resolve({ code, signal }));
  });
  // Node resumes, and so throws away, the unread stdout of a child that has exited (child_process's
  // flushStdio): a reader that starts after a quick tool ended (the erofs writer opens its file
  // first) would see an empty stream. Piped at once into a stream of ours, nothing is lost, and
  // destroying ours destroys the tool's stdout (the tool then stops on EPIPE).
  const stdout = process.stdout ? new PassThrough({ highWaterMark: STDOUT_BUFFER }) : undefined;
  if (process.stdout && stdout) pipeline(process.stdout, stdout, () => undefined);
  return { tool, process, stdout, stderr: () => stderr, exit, killedByUs: false };
}

export const killTool = (child: ToolProcess) => {
  if (child.process.exitCode === null && child.process.signalCode === null) {
    child.killedByUs = true;
    child.process.kill('SIGKILL');
  }
};

/** Waits for a helper that should be finishing; kills it if it lingers. */
export async function waitOrKill(child: ToolProcess): Promise<void> {
  const timer = setTimeout(() => killTool(child), 2000);
  try {
    await child.exit;
  } finally {
    clearTimeout(timer);
  }
}

/** Failed on its own: a non-zero exit, a spawn error, or a signal we did not send. */
export const exitedBadly = (child: ToolProcess, exit: ToolExit): boolean =>
  exit.error !== undefined || (exit.code !== null && exit.code !== 0) || (exit.signal !== null && !child.killedByUs);

/** The first stderr line that says something (not progress, not a broken pipe we caused). */
export const usefulLine = (stderr: string): string | undefined =>
  stderr
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !/broken pipe/i.test(line));

export const toolMissing = (tool: string, pkg: string) =>
  nodeError('E_TOOL_MISSING', `${tool} is not installed`, { hint: `install the ${pkg} package on this host` });

/** Turns a finished source helper (tar, zstd, xz) into an error, or undefined when it succeeded (or we stopped it). */
export async function sourceToolFailure(child: ToolProcess, what: string): Promise<StrataError | undefined> {
  const { code, signal, error } = await child.exit;
  if (error) {
    if (errnoCode(error) === 'ENOENT') return toolMissing(child.tool, child.tool.endsWith('tar') ? 'tar' : child.tool.split('/').pop() ?? child.tool);
    return nodeError('E_SPAWN', `cannot run ${child.tool}: ${error.message}`, { hint: 'check the host installation' });
  }
  if (!exitedBadly(child, { code, signal })) return undefined;
  const line = usefulLine(child.stderr());
  if (line === undefined && signal === 'SIGPIPE') return undefined; // we stopped reading first
  if (line === undefined && code !== null && child.stderr().trim() !== '') return undefined; // only a broken pipe
  return userError('E_TAR', `cannot read ${what}: ${line ?? (signal ? `${child.tool} was killed by ${signal}` : `${child.tool} exited with ${code}`)}`, {
    hint: 'the source is damaged or unreadable; check it, or fetch or export it again',
    detail: child.stderr(),
  });
}

// The client of the mount executor (helper/strata-mount.c, built to dist/helper/strata-mount): one
// long-lived child per process that performs mount(2)/umount2(2)/loop attach requests, one reply
// per request, so a job's whole set-up costs one exec instead of one mount(8) per layer and bind.
// When the helper is not built (no C compiler) or the tests disable it (STRATA_MOUNT_HELPER=none,
// src/test-switches.ts), callers fall back to spawning util-linux (mounts.ts decides).

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nodeError } from '../errors.js';
import { recordCommand, type RunResult } from './exec.js';
import { jobContext } from './job-context.js';
import { mountHelperOverride } from '../test-switches.js';

/** mount(2) flags (linux/mount.h) and umount2(2) flags used by strata. */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  REMOUNT: 32,
  BIND: 4096,
  REC: 16384,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
} as const;
export const MNT_DETACH = 2;

export interface HelperReply {
  ok: boolean;
  /** ok: the reply's value (e.g. the loop device); not ok: the errno name (EBUSY, ...). */
  value: string;
  /** not ok: "what: strerror". */
  message: string;
  /** not ok, for requests on a job's tree: where it failed (source, target, type, deny, mount, verify). */
  stage?: string;
}

let location: string | null | undefined;

/** The helper's path, or null when it is not built or disabled (STRATA_MOUNT_HELPER=none). */
export function mountHelperPath(): string | null {
  if (location !== undefined) return location;
  const chosen = mountHelperOverride();
  if (chosen === null) return (location = null);
  // Bundled: dist/chunks/x.js → dist/helper; from the sources (tests): src/host → dist/helper.
  const candidates = chosen ? [chosen] : ['../helper/strata-mount', '../../dist/helper/strata-mount'].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  location = candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }) ?? null;
  return location;
}

/** One helper process and its queue of requests awaiting their reply (answered in order). */
export class MountHelper {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (reply: HelperReply) => void; reject: (error: Error) => void }[] = [];
  private buffered = '';
  /** Requests not written yet (see request). */
  private outgoing?: string[];
  /** Set once the helper is gone; later requests fail with it. */
  exited?: Error;

  constructor(path: string) {
    // Our own pipes only: the helper never holds the prolog's stdout/stderr (slurmd waits for EOF).
    // Our pid: the helper dies with us, also with requests still queued (helper/strata-mount.c).
    this.child = spawn(path, [String(process.pid)], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.receive(chunk));
    this.child.stderr.resume();
    const fail = (error: Error) => {
      this.exited = error;
      for (const pending of this.waiting.splice(0)) pending.reject(error);
    };
    this.child.on('error', (error) => fail(nodeError('E_EXEC', `cannot run the mount helper ${path}: ${error.message}`, { hint: 'rebuild strata (npm run build) or set STRATA_MOUNT_HELPER=none' })));
    this.child.on('exit', (code, signal) => fail(nodeError('E_EXEC', `the mount helper ${path} exited (${signal ?? code})`)));
    this.idle();
  }

  /** Send one request; resolves with its reply. */
  request(fields: (string | number)[]): Promise<HelperReply> {
    if (this.exited) return Promise.reject(this.exited);
    const line = fields.map(String);
    if (line.some((field) => /[\t\n]/.test(field) || field === '')) {
      return Promise.reject(nodeError('E_EXEC', `mount helper: a path contains a tab or newline, or is empty: ${JSON.stringify(line)}`));
    }
    this.busy();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      // Of requests made in one go (a job's binds, its unmounts) the first leaves at once, so the
      // executor starts on it, and the rest in one write once the caller's synchronous code is
      // done: the executor is woken twice for the run, not once per request.
      const text = `${line.join('\t')}\n`;
      if (this.outgoing) {
        this.outgoing.push(text);
        return;
      }
      this.child.stdin.write(text);
      const outgoing: string[] = (this.outgoing = []);
      queueMicrotask(() => {
        this.outgoing = undefined;
        if (outgoing.length) this.child.stdin.write(outgoing.join(''));
      });
    });
  }

  /** Run one request and shape the reply like a tool's RunResult (logged for `--timings`). */
  async run(fields: (string | number)[]): Promise<RunResult & { reply: HelperReply }> {
    const started = performance.now();
    const reply = await this.request(fields);
    const durationMs = performance.now() - started;
    const command = `strata-mount ${fields.join(' ')}`;
    recordCommand(command, durationMs);
    return { stdout: reply.ok ? reply.value : '', stderr: reply.ok ? '' : `${reply.message} (${reply.value})`, exitCode: reply.ok ? 0 : 32, durationMs, command, reply };
  }

  /** Closing stdin ends the helper (and drops a lock it holds). */
  close(): Promise<void> {
    if (this.exited || this.child.exitCode !== null) return Promise.resolve();
    // Keep the event loop alive until it is gone, or the caller's await would never resume.
    this.busy();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.stdin.end();
    });
  }

  private receive(chunk: string) {
    this.buffered += chunk;
    let newline;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const [status, value = '', message = '', stage] = this.buffered.slice(0, newline).split('\t');
      this.buffered = this.buffered.slice(newline + 1);
      this.waiting.shift()?.resolve({ ok: status === 'ok', value, message, ...(stage ? { stage } : {}) });
    }
    if (this.waiting.length === 0) this.idle();
  }

  // While idle the helper must not keep Node's event loop alive: the process exits when its work is
  // done, and the helper then sees EOF and exits too.
  private idle() {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref(): void }).unref();
    (this.child.stderr as unknown as { unref(): void }).unref();
  }

  private busy() {
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
  }
}

let shared: MountHelper | null | undefined;
/** Key of a run's own executor in its job context (src/host/job-context.ts). */
const OWN_EXECUTOR = {};
/**
 * Executors of finished agent runs, holding no lock, kept for the next runs: a spawn blocks the
 * agent's event loop ~5-20 ms (more while other jobs are running), which 16 job starts at once
 * would otherwise pay one after the other. ~1 MiB each.
 */
const idle: MountHelper[] = [];
const MAX_IDLE = 16;

/** Start `count` executors ahead of the first jobs (the node agent, at its start). */
export function prestartExecutors(count: number): void {
  const path = mountHelperPath();
  while (path && idle.length < Math.min(count, MAX_IDLE)) idle.push(new MountHelper(path));
}

/**
 * This process's mount executor, started on first use; null when strata spawns util-linux instead.
 * In the node agent each request has its own while it runs (given back by `releaseRunExecutor`):
 * it holds that run's node lock, exactly as a separate prolog process's executor would.
 */
export function mountExecutor(): MountHelper | null {
  const context = jobContext.getStore();
  const current = context ? (context.owned.get(OWN_EXECUTOR) as MountHelper | null | undefined) : shared;
  if (current !== undefined && !current?.exited) return current;
  const path = mountHelperPath();
  const started = (context && takeIdle()) || (path ? new MountHelper(path) : null);
  if (context) context.owned.set(OWN_EXECUTOR, started);
  else shared = started;
  return started;
}

function takeIdle(): MountHelper | undefined {
  for (let executor = idle.pop(); executor; executor = idle.pop()) if (!executor.exited) return executor;
  return undefined;
}

/** The run in progress is done with its executor: keep it for the next run, holding no lock. */
export async function releaseRunExecutor(): Promise<void> {
  const context = jobContext.getStore();
  const executor = context?.owned.get(OWN_EXECUTOR) as MountHelper | null | undefined;
  context?.owned.delete(OWN_EXECUTOR);
  if (!executor || executor.exited) return;
  // The run released its node lock, unless it failed in between: drop it here either way, and a
  // name service lookup the run started and never collected.
  const released = await executor.request(['release']).then((reply) => reply.ok, () => false);
  if (released && idle.length < MAX_IDLE) idle.push(executor);
  else await executor.close();
}

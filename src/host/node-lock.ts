// The node-local lock around shared layer mounts. It is a flock(2) held by a child process whose
// stdin is our pipe: when we exit for any reason, SIGKILL included, the pipe closes, the child
// exits and the kernel drops the lock; the child is the mount executor when it is built, else flock(1).
// (A mkdir/mtime lock such as proper-lockfile's would block every other prolog on the node until it
// went stale, >= 5 s, after the 10 ms kill Slurm gives.)

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { nodeError } from '../errors.js';
import { mountExecutor, type MountHelper } from './mount-helper.js';
import { TOOLS } from './tools.js';
import { jobContext } from './job-context.js';

export interface NodeLock {
  /** How long we waited for it (ms). */
  waitedMs: number;
  release(): Promise<void>;
}

export async function acquireNodeLock(lockFile: string, timeoutMs = 120_000): Promise<NodeLock> {
  mkdirSync(dirname(lockFile), { recursive: true, mode: 0o755 });
  const helper = mountExecutor();
  return helper ? lockWithHelper(helper, lockFile, timeoutMs) : lockWithFlock(lockFile, timeoutMs);
}

// The executor holds at most one lock: this process's lock takers queue here, so that a second
// one never waits inside the executor behind mounts that the first one still has to make.
let turn: Promise<void> = Promise.resolve();

/** The mount executor holds the lock: no process spawned, where flock(1) costs flock + sh + cat. */
async function lockWithHelper(helper: MountHelper, lockFile: string, timeoutMs: number): Promise<NodeLock> {
  let endTurn: () => void = () => undefined;
  const started = performance.now();
  // In the node agent each run has its own executor (mount-helper.ts): flock(2) queues them, as it
  // queues separate prolog processes.
  if (!jobContext.getStore()) {
    const previous = turn;
    turn = new Promise((resolve) => (endTurn = resolve));
    await previous;
  }
  const reply = await helper.request(['lock', lockFile, timeoutMs]).catch((error: Error) => ({ ok: false, value: 'EPIPE', message: error.message }));
  if (!reply.ok) {
    endTurn();
    throw nodeError('E_LOCK', `cannot take the node lock ${lockFile}${reply.value === 'ETIMEDOUT' ? ` within ${timeoutMs / 1000}s` : ''}: ${reply.message}`, {
      hint: 'another strata process on this node holds it; see `strata node status`',
    });
  }
  return {
    waitedMs: performance.now() - started,
    // Not waited for: the executor carries requests out in order, so whatever this process asks of
    // it next happens after the unlock, and other processes' flock() gets the lock when it happens.
    // (An executor that died took the lock with it.)
    release: async () => {
      void helper.request(['unlock']).catch(() => undefined);
      endTurn();
    },
  };
}

async function lockWithFlock(lockFile: string, timeoutMs: number): Promise<NodeLock> {
  const started = performance.now();
  // flock opens (creating) the file, locks it, then runs `sh`, which announces itself and waits on
  // stdin. `exec 1>&-` is not used: we need the one-byte announcement on stdout.
  const child = spawn(TOOLS.flock, ['-w', String(Math.ceil(timeoutMs / 1000)), lockFile, '/bin/sh', '-c', 'echo locked; exec /bin/cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin' },
  });
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', () => resolve());
    child.once('error', (error) => reject(nodeError('E_LOCK', `cannot take the node lock ${lockFile}: ${error.message}`)));
    child.once('exit', (code) =>
      reject(nodeError('E_LOCK', `cannot take the node lock ${lockFile} within ${timeoutMs / 1000}s (flock exit ${code}${stderr ? `: ${stderr.trim()}` : ''})`, {
        hint: 'another strata process on this node holds it; see `strata node status`',
      })),
    );
  });
  child.removeAllListeners('exit');
  return {
    waitedMs: performance.now() - started,
    release: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

/** Run `work` while holding the node lock; `waited` learns how long taking it took (ms). */
export async function withNodeLock<T>(lockFile: string, work: () => Promise<T>, waited?: (ms: number) => void): Promise<T> {
  const lock = await acquireNodeLock(lockFile);
  waited?.(lock.waitedMs);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

// Starting helper/upper-walk.c (dist/helper/strata-upper-walk): it reads a job's writable layer
// with the job user's file-system identity and streams records (runtime/save/upper-records.ts).

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nodeError } from '../errors.js';
import type { JobUser } from './as-user.js';

/** The walker's path (bundled: dist/chunks → dist/helper; from the sources: src/host → dist/helper). */
export function upperWalkerPath(): string {
  const candidates = ['../helper/strata-upper-walk', '../../dist/helper/strata-upper-walk'].map((relative) => fileURLToPath(new URL(relative, import.meta.url)));
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // next
    }
  }
  throw nodeError('E_NOT_BUILT', 'strata-upper-walk is not built, so --container-save cannot read a job\'s layer', { hint: 'rebuild strata with a C compiler (npm run build)' });
}

/** The walker's stdout, and its exit status once it is done (its stderr is collected). */
export function walkUpper(upperDir: string, user: JobUser): { output: AsyncIterable<Buffer>; exit: Promise<{ status: number; stderr: string }>; stop: () => void } {
  const child = spawn(upperWalkerPath(), [upperDir, String(user.uid), String(user.gid)], { env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
  const exit = new Promise<{ status: number; stderr: string }>((resolve) => {
    child.on('error', (error) => resolve({ status: 127, stderr: error.message }));
    child.on('close', (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), stderr }));
  });
  return { output: child.stdout, exit, stop: () => child.kill('SIGKILL') };
}

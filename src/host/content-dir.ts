// A directory named by its content (the Slurm command wrappers a node's jobs share), written once
// and then only read: written in full under a staging name of its writer's, then renamed into
// place, so that no reader ever sees it half-filled. A writer killed half-way (a prolog slurmd
// timed out, a node agent killed) leaves its staging directory: the next writer in the same parent
// removes those whose writer is gone.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** `<name>.<pid>.<12 hex>`: a staging directory of `name` and the process writing it. */
const STAGING = /^(.+)\.(\d+)\.[0-9a-f]{12}$/;

/** Write `files` into `dir` unless it exists (then they are already there). */
export function writeContentDir(dir: string, files: readonly { name: string; text: string }[], mode = 0o755): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  removeAbandonedStaging(parent);
  const staging = `${dir}.${process.pid}.${randomBytes(6).toString('hex')}`;
  mkdirSync(staging, { mode: 0o755 });
  try {
    for (const { name, text } of files) writeFileSync(join(staging, name), text, { mode, flag: 'wx' });
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    // Another writer put the same content there meanwhile (ENOTEMPTY): theirs serve.
    if (!existsSync(dir)) throw error;
  }
}

/** Staging directories in `parent` whose writing process no longer runs. */
function removeAbandonedStaging(parent: string): void {
  for (const entry of readdirSync(parent)) {
    const match = STAGING.exec(entry);
    if (match && !running(Number(match[2]))) rmSync(join(parent, entry), { recursive: true, force: true });
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

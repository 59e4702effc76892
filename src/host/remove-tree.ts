// Deleting a directory tree as root when a user may be changing it meanwhile (a job's writable
// layer on disk, a job directory). Node's recursive rm walks by path strings, so a user swapping a
// directory for a symlink between its lstat and its readdir would make root delete the link's
// target. GNU rm walks with fts by descriptor (openat, O_NOFOLLOW), never follows a symlink, and
// with --one-file-system never crosses into a mount.
//
// The common case, a job directory after its epilog unmounted everything, is a tree of root-owned
// directories no one else can write holding files and empty mount points: that is removed here
// without starting a process (the epilog's hot path), and anything else goes to GNU rm.

import { lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { commandFailed, runTool } from './exec.js';

/**
 * Remove `path` and everything below it. A user still changing the tree (a process of theirs left
 * on the node) can make one pass fail ("Directory not empty"): a few passes are tried.
 */
export async function removeTree(path: string, attempts = 5): Promise<void> {
  if (removeShallowRootTree(path)) return;
  for (let attempt = 1; ; attempt++) {
    const result = await runTool('rm', ['-rf', '--one-file-system', '--', path]);
    if (result.exitCode === 0) return;
    if (attempt >= attempts) throw commandFailed(result);
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
  }
}

/** Deeper root-only trees than this go to GNU rm (a job directory is 3 levels deep). */
const SHALLOW_DEPTH = 4;

/**
 * Remove `path` when it is a tree of real directories owned by root that only root can write, all
 * on `path`'s filesystem, holding files: the names in such directories cannot change under us
 * (nobody else may write them), unlink never follows a symlink, a directory of another filesystem
 * (a mount left inside) is never entered, and rmdir removes only an empty directory (never a mount
 * point: EBUSY). Returns false, having removed at most some entries, when the tree is anything
 * else (a directory a user can write, a mount, deeper than SHALLOW_DEPTH); true when `path` is gone.
 */
export function removeShallowRootTree(path: string): boolean {
  try {
    return removeRootOnly(path, lstatSync(path).dev, SHALLOW_DEPTH);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' && !exists(path);
  }
}

function removeRootOnly(path: string, device: number, depth: number): boolean {
  const stat = lstatSync(path);
  if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0 || stat.dev !== device || depth === 0) return false;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (!entry.isDirectory()) unlinkSync(child);
    else if (!removeRootOnly(child, device, depth - 1)) return false;
  }
  rmdirSync(path);
  return true;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

// Deleting a directory tree as root when a user may be changing it meanwhile (a job's writable
// layer on disk, a job directory). Node's recursive rm walks by path strings, so a user swapping a
// directory for a symlink between its lstat and its readdir would make root delete the link's
// target. GNU rm walks with fts by descriptor (openat, O_NOFOLLOW), never follows a symlink, and
// with --one-file-system never crosses into a mount.
//
// The common case, a job directory after its epilog unmounted everything, is a root-owned
// directory no one else can write holding files and empty mount points: that is removed here
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

/**
 * Remove `path` when it is a real directory owned by root that only root can write, whose
 * entries are non-directories or empty directories. Its entries' names cannot change under us
 * (nobody else may write the directory), unlink never follows a symlink, and rmdir removes only
 * an empty directory (never a mount point: EBUSY). Returns false, having removed at most some
 * entries, when the tree is anything else; true when `path` is gone.
 */
export function removeShallowRootTree(path: string): boolean {
  try {
    const stat = lstatSync(path);
    if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0) return false;
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const child = join(path, entry.name);
      if (entry.isDirectory()) rmdirSync(child);
      else unlinkSync(child);
    }
    rmdirSync(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' && !exists(path);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

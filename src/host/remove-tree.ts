// Deleting a directory tree as root when a user may be changing it meanwhile (a job's writable
// layer on disk, a job directory). Node's recursive rm walks by path strings, so a user swapping a
// directory for a symlink between its lstat and its readdir would make root delete the link's
// target. GNU rm walks with fts by descriptor (openat, O_NOFOLLOW), never follows a symlink, and
// with --one-file-system never crosses into a mount.

import { commandFailed, runTool } from './exec.js';

/**
 * Remove `path` and everything below it. A user still changing the tree (a process of theirs left
 * on the node) can make one pass fail ("Directory not empty"): a few passes are tried.
 */
export async function removeTree(path: string, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const result = await runTool('rm', ['-rf', '--one-file-system', '--', path]);
    if (result.exitCode === 0) return;
    if (attempt >= attempts) throw commandFailed(result);
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
  }
}

// `strata verify`'s check of who owns what in the store: everything must belong to the store's
// owner (the owner of its root), be writable by nobody else and readable by all. Nodes refuse a
// layer file that is not the owner's (runtime/layers/file.ts), and a tag or manifest only root can
// read fails users' `strata images` and submit-time resolution. Reads only.

import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export async function permissionProblems(root: string): Promise<string[]> {
  const problems: string[] = [];
  const top = await lstat(root);
  const owner = top.uid;
  const visit = async (path: string, info: Awaited<ReturnType<typeof lstat>>) => {
    const mode = Number(info.mode) & 0o7777;
    const octal = mode.toString(8).padStart(4, '0');
    if (info.isSymbolicLink()) return void problems.push(`${path}: a symbolic link (strata never follows links in the store); remove it`);
    if (Number(info.uid) !== Number(owner)) problems.push(`${path}: owned by uid ${info.uid}, not by the store's owner (uid ${owner}); fix: chown ${owner} '${path}'`);
    if (mode & 0o022) problems.push(`${path}: mode ${octal} lets others write it; fix: chmod go-w '${path}'`);
    const wanted = info.isDirectory() ? 0o005 : 0o004;
    if ((mode & wanted) !== wanted) problems.push(`${path}: mode ${octal} keeps users out; fix: chmod a+r${info.isDirectory() ? 'x' : ''} '${path}'`);
    if (!info.isDirectory()) return;
    for (const name of await readdir(path)) {
      const child = join(path, name);
      await visit(child, await lstat(child));
    }
  };
  await visit(root, top);
  return problems;
}

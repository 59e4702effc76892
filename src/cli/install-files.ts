// Installing strata's own files, shared by install-slurm and install-pbs: each file is replaced by
// rename (a prolog that is running, or a slurmd that has the plugin mapped, keeps its old copy),
// and the package to install from is found from this program's own location.

import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userError } from '../errors.js';

export type InstallAction =
  | { kind: 'copy'; source: string; target: string; mode: number; change: 'new' | 'changed' }
  | { kind: 'remove'; target: string }
  /** rename(2): at every instant exactly one of the two names exists. */
  | { kind: 'rename'; target: string; from: string }
  | { kind: 'symlink'; target: string; pointsTo: string }
  | { kind: 'write'; target: string; content: string };

export async function applyInstall(plan: { actions: InstallAction[] }): Promise<void> {
  for (const action of plan.actions) {
    if (action.kind === 'remove') {
      await rm(action.target, { force: true });
      continue;
    }
    if (action.kind === 'rename') {
      await rename(action.from, action.target);
      continue;
    }
    await mkdir(dirname(action.target), { recursive: true, mode: 0o755 });
    const temp = `${action.target}.strata-new`;
    await rm(temp, { force: true });
    if (action.kind === 'copy') {
      await copyFile(action.source, temp, constants.COPYFILE_FICLONE);
      await chmod(temp, action.mode);
    } else if (action.kind === 'symlink') {
      await symlink(action.pointsTo, temp);
    } else {
      await writeFile(temp, action.content, { mode: 0o644, flag: 'wx' });
    }
    // rename: a running prolog keeps its file, a slurmd keeps its mapped plugin.
    await rename(temp, action.target);
  }
}

/** The directory holding strata's package.json, walking up from this (bundled or source) file. */
export async function findPackageRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = await readFile(join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (manifest && (JSON.parse(manifest) as { name?: string }).name === 'strata') return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw userError('E_NOT_BUILT', 'cannot find the strata build to install from (no package.json above this program)', {
        hint: 'run it from the source tree: node dist/bin/strata.js install-slurm',
      });
    }
    dir = parent;
  }
}

/** Regular files below `dir`, as paths relative to it. */
export async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (current: string) => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() && !entry.name.endsWith('.strata-new')) files.push(relative(dir, path));
    }
  };
  await walk(dir);
  return files.sort();
}

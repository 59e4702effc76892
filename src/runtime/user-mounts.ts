// Checks on a user's --container-mounts that need the node: the prolog runs as root, so a bind it
// makes would show the user anything root can reach. Each source must be readable (and, for a
// directory, searchable) by the job's own user, checked by that user (setpriv + test, so ACLs,
// supplementary groups and root-squashing shared filesystems count); strata's own runtime dir may
// be neither the source nor the target, nor may the store be covered.

import { existsSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { userError } from '../errors.js';
import { runTool } from '../host/exec.js';
import { TOOLS } from '../host/tools.js';
import type { BindRequest } from './mount-request.js';

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

const bad = (bind: BindRequest, why: string) =>
  userError('E_BAD_MOUNT', `mount ${bind.source}:${bind.target} refused: ${why}`, { hint: 'mount a path of your own, e.g. in your home or project directory' });

/** Refuse user mounts of strata's own paths (pure). */
export function checkStrataPaths(mounts: BindRequest[], config: Pick<Config, 'runtimeDir' | 'store'>): void {
  for (const bind of mounts) {
    if (within(bind.source, config.runtimeDir)) throw bad(bind, `${bind.source} is inside strata's runtime dir (other jobs' state)`);
    for (const [dir, name] of [[config.runtimeDir, 'runtime dir'], [config.store.path, 'image store']]) {
      if (within(bind.target, dir) || within(dir, bind.target)) throw bad(bind, `${bind.target} would cover strata's ${name} ${dir}`);
    }
  }
}

/** Refuse user mounts whose source the job's user could not read themselves. */
export async function checkSourcesReadable(mounts: BindRequest[], uid: number, gid: number): Promise<void> {
  if (uid === 0) return;
  // A missing source is reported by apply (root decides whether it exists: for the user, one
  // below a directory they cannot search looks missing too).
  const sources = mounts.map((bind) => bind.source).filter((source) => existsSync(source));
  if (!sources.length) return;
  // One process for all sources (the prolog pays ~3-7 ms per spawn): it prints the first source
  // that is not readable, or a directory that is not searchable, and fails.
  const script = 'for p; do test -r "$p" && { test ! -d "$p" || test -x "$p"; } || { printf "%s\\n" "$p"; exit 1; }; done';
  const check = [TOOLS.sh, '-c', script, 'sh', ...sources];
  let result = await runTool('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', ...check]);
  // No passwd entry for the uid: check with its primary group only.
  if (result.exitCode !== 0 && /setpriv:/.test(result.stderr)) result = await runTool('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', ...check]);
  if (result.exitCode === 0) return;
  const refused = result.stdout.trimEnd().split('\n').pop();
  const bind = mounts.find((candidate) => candidate.source === refused);
  if (!bind) throw bad(mounts[0], `cannot check whether you (uid ${uid}) can read the mount sources: ${result.stderr.trim()}`);
  throw bad(bind, `you (uid ${uid}) cannot read ${bind.source}`);
}

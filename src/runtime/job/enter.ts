// Entering a prepared rootfs without setuid (`strata exec`): the command line and environment
// that put a process into <runtime>/jobs/<job>/rootfs. Pure; src/cli/commands/exec.ts checks the
// job and runs it.
//
//   setpriv --no-new-privs unshare --user --map-current-user --mount --root=ROOTFS --wd=DIR -- CMD...
//
// The user namespace gives the caller CAP_SYS_CHROOT over its own new mount namespace only, so
// the chroot needs no privilege and grants none: the process keeps the caller's uid, and
// no_new_privs (as the SPANK plugin sets it) makes setuid files in the image worthless.

import { TOOLS } from '../../host/tools.js';
import { appendSearchPath } from '../devices/env.js';
import type { EntryConfig } from './plan.js';

/** Variables that describe the job to the scheduler's tools and MPI: the image never overrides them. */
const SCHEDULER_VARIABLE = /^(SLURM_|SLURMD_|SPANK_|PBS_|PMI_|PMIX_)/;
/** The caller's locale: dropped unless kept, so programs do not warn about locales the image lacks. */
const LOCALE_VARIABLE = /^(LANG|LANGUAGE|LC_[A-Z]+)$/;

/**
 * The caller's environment with the image's on top, as the SPANK plugin builds it (Pyxis's
 * precedence): scheduler and MPI variables stay the caller's, so do the names listed in
 * STRATA_CONTAINER_ENV; the caller's locale is dropped unless listed there. Then the devices'
 * search-path directories (entry.json `devicePaths`) are appended to whichever value won, each
 * once: a kept LD_LIBRARY_PATH must not hide the driver libraries (no ld.so.cache has them).
 */
export function entryEnvironment(caller: NodeJS.ProcessEnv, image: string[], devicePaths: readonly string[] = []): Record<string, string> {
  const keep = new Set((caller.STRATA_CONTAINER_ENV ?? '').split(',').filter(Boolean));
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(caller)) if (value !== undefined && (keep.has(name) || !LOCALE_VARIABLE.test(name))) env[name] = value;
  for (const item of image) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const name = item.slice(0, eq);
    if (SCHEDULER_VARIABLE.test(name) || (keep.has(name) && caller[name] !== undefined)) continue;
    env[name] = item.slice(eq + 1);
  }
  for (const item of devicePaths) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const name = item.slice(0, eq);
    env[name] = appendSearchPath(env[name], item.slice(eq + 1));
  }
  return env;
}

/**
 * Where the command starts: --workdir if given; else the caller's directory when the container
 * sees that very directory (the job's directory and home are bound at the same path); else the
 * container's working directory from entry.json (--container-workdir, or the image's WorkingDir).
 */
export function entryWorkdir(options: { explicit?: string; cwd: string; cwdInContainer: boolean; entry: Pick<EntryConfig, 'workdir'> }): string {
  if (options.explicit) return options.explicit;
  if (options.cwdInContainer) return options.cwd;
  return options.entry.workdir || '/';
}

export function entryArgv(rootfs: string, workdir: string, command: string[]): string[] {
  return [TOOLS.setpriv, '--no-new-privs', TOOLS.unshare, '--user', '--map-current-user', '--mount', `--root=${rootfs}`, `--wd=${workdir}`, '--', ...command];
}

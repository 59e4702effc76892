// CDI mount options (OCI mount option strings) as the few facts strata's bind mounts need. Pure.
// Only bind mounts are supported: a CDI mount of another filesystem type would have root mount a
// filesystem the admin described for a different runtime, which strata has no step for.

export interface BindOptions {
  readonly: boolean;
  /** `rbind`: submounts of the source come along. */
  recursive: boolean;
  /** Per-mount flags beyond ro/rw, e.g. nosuid, nodev, noexec, relatime. */
  flags: string[];
}

const BIND_TYPES = new Set(['', 'none', 'bind', 'rbind']);
// strata's mounts are private to the job; a spec's propagation wish does not apply.
const PROPAGATION = new Set(['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared', 'unbindable', 'runbindable']);
const PASSED = new Set(['noexec', 'exec', 'relatime', 'norelatime', 'noatime', 'atime', 'nodiratime', 'diratime', 'strictatime']);

/**
 * The bind options of a CDI mount, or the problem with them. nosuid and nodev are added unless the
 * spec asks for `suid` or `dev` by name (a mount of device nodes needs `dev`).
 */
export function bindOptions(type: string | undefined, options: readonly string[] = []): BindOptions | { problem: string } {
  if (!BIND_TYPES.has(type ?? '')) return { problem: `mount type "${type}" is not supported (strata does bind mounts only)` };
  let readonly = false;
  let recursive = type === 'rbind';
  let suid = false;
  let dev = false;
  const flags: string[] = [];
  for (const option of options) {
    if (option === 'ro' || option === 'rw') readonly = option === 'ro';
    else if (option === 'bind' || option === 'rbind') recursive = option === 'rbind';
    else if (option === 'suid' || option === 'nosuid') suid = option === 'suid';
    else if (option === 'dev' || option === 'nodev') dev = option === 'dev';
    else if (PASSED.has(option)) flags.push(option);
    else if (!PROPAGATION.has(option)) return { problem: `mount option "${option}" is not supported` };
  }
  return { readonly, recursive, flags: [...(suid ? [] : ['nosuid']), ...(dev ? [] : ['nodev']), ...new Set(flags)] };
}

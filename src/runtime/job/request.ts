// User bind-mount requests, in the syntax Pyxis users know: `SRC[:DST[:FLAGS]]`, comma-separated,
// FLAGS joined with `+` as Pyxis writes them (`ro+rprivate`). SRC may be relative (`./data`,
// `../x`, `.`): Pyxis resolves it against the task's working directory, which is the job's
// working directory here (`relativeTo`). A flag strata cannot honour is refused by name, never
// dropped. Pure: existence and permissions are checked at apply time.

import { posix } from 'node:path';
import { printable, userError } from '../../errors.js';

export interface BindRequest {
  /** Host path. */
  source: string;
  /** Path inside the container. */
  target: string;
  readonly: boolean;
  /** Missing source: skip rather than fail the job (site mounts only). */
  optional: boolean;
  /** Bind the whole tree below, submounts included (rbind). */
  recursive: boolean;
  /** Made by strata or the node itself (generated files, /etc/hosts): opened as root. */
  trusted?: boolean;
  /** Added by strata for every job (environment.ts): a user's mount on the same target replaces it. */
  automatic?: boolean;
  /** Only where the image has nothing at the target (a library the image may ship itself). */
  ifAbsent?: boolean;
}

/** Container paths a user may not cover: the system's own and strata's. */
const PROTECTED = ['/', '/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/var', '/run'];

/**
 * Flags (enroot's fstab options, as Pyxis passes them) that describe what strata's binds already
 * are: every user bind is `bind` (not recursive), `rslave` (nothing propagates back to the host,
 * which is what Pyxis users ask `rprivate` for), `nosuid,nodev`, and its mount point is created
 * as needed (`x-create`).
 */
const ALREADY_SO = new Set(['bind', 'rslave', 'slave', 'rprivate', 'private', 'nosuid', 'nodev', 'x-create=auto', 'x-create=dir', 'x-create=file']);

/** Flags strata refuses, and what to do instead. */
const REFUSED: Record<string, string> = {
  rbind: 'strata binds the directory alone, not the mounts below it; mount each of those you need as an entry of its own',
  shared: 'strata\'s binds never propagate mounts back to the host; drop it',
  rshared: 'strata\'s binds never propagate mounts back to the host; drop it',
  unbindable: 'drop it (strata\'s binds are rslave)',
  runbindable: 'drop it (strata\'s binds are rslave)',
  noexec: 'strata cannot make a bind noexec; drop it',
  exec: 'drop it',
  suid: 'set-user-ID files never work in a strata bind (nosuid); drop it',
  dev: 'device files never work in a strata bind (nodev); drop it',
};

export interface MountParseOptions {
  /** Where relative sources start: the job's working directory on the host. */
  relativeTo?: string;
}

export function parseMountRequests(spec: string | undefined, options: MountParseOptions = {}): BindRequest[] {
  if (!spec?.trim()) return [];
  return spec.split(',').map((item) => parseOne(item.trim(), spec, options));
}

function parseOne(item: string, whole: string, options: MountParseOptions): BindRequest {
  const bad = (why: string, hint = 'use SRC[:DST[:ro|rw]] with absolute (or ./relative) sources and absolute destinations, comma-separated, flags joined with +, e.g. /lustre/proj:/data:ro') =>
    userError('E_BAD_MOUNT', printable(`invalid mount "${item}" in --container-mounts: ${why}`), { hint });
  if (!item) throw bad(`empty entry in "${whole}"`);
  // A NUL cannot be passed to mount(8), and a newline would forge lines in logs and mountinfo readers.
  if (/[\x00-\x1f\x7f]/.test(item)) throw bad('it contains a control character');
  const parts = item.split(':');
  if (parts.length > 3) throw bad('too many ":"');
  const [sourceText, target = parts[0], flagText = 'rw'] = parts;
  if (sourceText === 'tmpfs' || sourceText === 'umount') {
    throw bad(`"${sourceText}" mounts are not supported by strata`, sourceText === 'tmpfs' ? 'the container\'s /tmp is already a per-job tmpfs; write scratch data there' : 'drop it: strata mounts nothing from the site\'s enroot configuration that you would need to remove');
  }
  const readonly = parseFlags(flagText, bad);
  const source = resolveSource(sourceText, options.relativeTo, bad);
  if (!target.startsWith('/')) throw bad(`"${target}" is not an absolute path`);
  if (target.split('/').includes('..')) throw bad(`"${target}" contains ".."`);
  const normalTarget = normalise(target);
  if (PROTECTED.includes(normalTarget) || normalTarget.startsWith('/proc/') || normalTarget.startsWith('/sys/') || normalTarget.startsWith('/dev/')) {
    throw bad(`"${target}" would cover a system directory of the container`);
  }
  return { source, target: normalTarget, readonly, optional: false, recursive: false };
}

/** `ro`, `rw` and Pyxis's `+`-joined flags; returns whether the bind is read-only. */
function parseFlags(text: string, bad: (why: string, hint?: string) => Error): boolean {
  let readonly: boolean | undefined;
  for (const flag of text.split('+')) {
    if (flag === 'ro' || flag === 'rw') {
      if (readonly !== undefined && readonly !== (flag === 'ro')) throw bad('both ro and rw');
      readonly = flag === 'ro';
    } else if (Object.hasOwn(REFUSED, flag)) {
      throw bad(`strata does not support the mount flag "${flag}"`, REFUSED[flag]);
    } else if (!ALREADY_SO.has(flag)) {
      throw bad(`unknown flag "${flag}" (use ro or rw)`, 'flags strata accepts: ro, rw, and (what its binds are anyway) bind, rslave, rprivate, nosuid, nodev, x-create=auto|dir|file, joined with +');
    }
  }
  return readonly ?? false;
}

/** An absolute source as given, or a `.`-relative one resolved against the job's working directory. */
function resolveSource(text: string, relativeTo: string | undefined, bad: (why: string, hint?: string) => Error): string {
  if (text.startsWith('/')) {
    if (text.split('/').includes('..')) throw bad(`"${text}" contains ".."`);
    return normalise(text);
  }
  if (text === '.' || text.startsWith('./') || text === '..' || text.startsWith('../')) {
    if (!relativeTo?.startsWith('/')) throw bad(`"${text}" is relative, and there is no job working directory here to start it from`, 'give the source as an absolute path');
    return normalise(posix.join(relativeTo, text));
  }
  throw bad(`"${text}" is not an absolute path`, 'start a relative source with ./ (it is then relative to the job\'s working directory), or give an absolute path');
}

export const normalise = (path: string) => {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
};

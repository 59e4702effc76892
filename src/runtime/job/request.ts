// User bind-mount requests, in the syntax Pyxis users know: `SRC[:DST[:FLAGS]]`, comma-separated,
// FLAGS being `ro` or `rw` (default rw). Pure: existence and permissions are checked at apply time.

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
}

/** Container paths a user may not cover: the system's own and strata's. */
const PROTECTED = ['/', '/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/var', '/run'];

export function parseMountRequests(spec: string | undefined): BindRequest[] {
  if (!spec?.trim()) return [];
  return spec.split(',').map((item) => parseOne(item.trim(), spec));
}

function parseOne(item: string, whole: string): BindRequest {
  const bad = (why: string) =>
    userError('E_BAD_MOUNT', printable(`invalid mount "${item}" in --container-mounts: ${why}`), {
      hint: 'use SRC[:DST[:ro|rw]] with absolute paths, comma-separated, e.g. /lustre/proj:/data:ro',
    });
  if (!item) throw bad(`empty entry in "${whole}"`);
  // A NUL cannot be passed to mount(8), and a newline would forge lines in logs and mountinfo readers.
  if (/[\x00-\x1f\x7f]/.test(item)) throw bad('it contains a control character');
  const parts = item.split(':');
  if (parts.length > 3) throw bad('too many ":"');
  const [source, target = parts[0], flags = 'rw'] = parts;
  if (flags !== 'ro' && flags !== 'rw') throw bad(`unknown flag "${flags}" (use ro or rw)`);
  for (const path of [source, target]) {
    if (!path.startsWith('/')) throw bad(`"${path}" is not an absolute path`);
    if (path.split('/').includes('..')) throw bad(`"${path}" contains ".."`);
  }
  const normalTarget = normalise(target);
  if (PROTECTED.includes(normalTarget) || normalTarget.startsWith('/proc/') || normalTarget.startsWith('/sys/') || normalTarget.startsWith('/dev/')) {
    throw bad(`"${target}" would cover a system directory of the container`);
  }
  return { source: normalise(source), target: normalTarget, readonly: flags === 'ro', optional: false, recursive: false };
}

export const normalise = (path: string) => {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
};

// Resolve a container path inside a rootfs the way the container would see it: symlinks in the
// image are followed relative to the rootfs, never to the host, so an image link such as
// /data -> /etc cannot make a bind mount land on the host's /etc. Missing components are created
// (in the per-job upper, since the rootfs is an overlay); the last one as a file or a directory.

import { lstatSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, userError } from '../errors.js';

const MAX_SYMLINKS = 40;

export function resolveInRoot(root: string, containerPath: string, create?: 'dir' | 'file'): string {
  const resolved: string[] = [];
  const queue = containerPath.split('/').filter(Boolean);
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const hostPath = join(root, ...resolved, part);
    let stat;
    try {
      stat = lstatSync(hostPath);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || !create) throw error;
      if (queue.length || create === 'dir') mkdirSync(hostPath, { mode: 0o755 });
      else writeFileSync(hostPath, '', { mode: 0o644, flag: 'wx' });
      resolved.push(part);
      continue;
    }
    if (stat.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) {
        throw userError('E_BAD_MOUNT', `too many symbolic links resolving ${containerPath} in the image`, { hint: 'mount somewhere else' });
      }
      const target = readlinkSync(hostPath);
      if (target.startsWith('/')) resolved.length = 0;
      queue.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    if (queue.length && !stat.isDirectory()) {
      throw userError('E_BAD_MOUNT', `cannot mount on ${containerPath}: /${[...resolved, part].join('/')} is not a directory in the image`, {
        hint: 'choose a destination whose parents are directories',
      });
    }
    resolved.push(part);
  }
  return join(root, ...resolved);
}

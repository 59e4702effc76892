// What a failed bind into a job's rootfs means, from the helper's errno and the stage it failed at
// (pure). Everything the user or the image can cause fails the job with a message that says what
// to change; only the node's own conditions (memory, I/O, a kernel without the mount API) fail the
// node. A bug here must err towards the job: a user's typo may never drain a node.

import type { HelperReply } from '../../host/mount-helper.js';
import { nodeError, printable, userError, type StrataError } from '../../errors.js';
import type { BindRequest } from './request.js';

/** errnos that are the node's condition whatever the user or the image asked for. */
export const NODE_ERRNOS = new Set(['EIO', 'ENOMEM', 'ENFILE', 'EMFILE', 'ENOSPC', 'ENOSYS', 'EPROTO', 'ECHILD']);

const WHY: Record<string, string> = {
  ENOENT: 'does not exist',
  ELOOP: 'is a symbolic link loop (or a link strata does not follow there)',
  ENAMETOOLONG: 'is too long a path',
  ENOTDIR: 'has a component that is not a directory',
  EXDEV: 'would have to be created inside another mount (a host directory bound into the container): create it there yourself, or choose another destination',
  EEXIST: 'is a symbolic link that points nowhere',
  EROFS: 'would need creating, but the image is read-only there',
  EINVAL: 'cannot be mounted there',
  ESTALE: 'changed while it was being mounted',
};

export function bindError(bind: BindRequest, reply: HelperReply, uid: number): StrataError {
  const errno = reply.value;
  const detail = `${reply.stage ?? 'helper'}: ${reply.message} (${errno})`;
  if (NODE_ERRNOS.has(errno) || !reply.stage) {
    const kernel = errno === 'ENOSYS' ? ' (this kernel lacks openat2 or the new mount API: strata needs Linux 5.12 or later)' : '';
    return nodeError('E_BIND', `cannot bind ${printable(bind.source)} into a job's rootfs: ${reply.message}${kernel}`, { hint: 'check the node (strata doctor)', detail });
  }
  if (bind.automatic) {
    // Strata's own binds (host files, generated identity, /tmp): only the image can be in the way.
    const what = reply.stage === 'type' ? (errno === 'EISDIR' ? 'is a directory' : 'is not a directory') : (WHY[errno] ?? 'cannot be mounted on');
    return userError('E_IMAGE_PATH', `the image's ${printable(bind.target)} ${what}, so strata cannot mount the job's ${printable(bind.target)} there`, {
      hint: 'fix the image (or mount your own file there with --container-mounts)',
      detail,
    });
  }
  const source = printable(bind.source);
  const target = printable(bind.target);
  const why = WHY[errno] ?? reply.message.replace(/^[^:]*: /, '').toLowerCase();
  switch (reply.stage) {
    case 'source':
      if (errno === 'ENOENT') {
        return userError('E_BAD_MOUNT', `mount source ${source} does not exist on this node`, {
          hint: 'check the path in --container-mounts (it must exist on every node of the job)',
          detail,
        });
      }
      if (errno === 'EACCES' || errno === 'EPERM') {
        return userError('E_BAD_MOUNT', `mount ${source}:${target} refused: you (uid ${uid}) cannot read ${source}`, { hint: 'mount a path of your own, e.g. in your home or project directory', detail });
      }
      return userError('E_BAD_MOUNT', `mount ${source}:${target} refused: ${source} ${why}`, { hint: 'mount a path of your own, e.g. in your home or project directory', detail });
    case 'deny':
      return userError('E_BAD_MOUNT', `mount ${source}:${target} refused: ${source} leads into strata's runtime dir (other jobs' state)`, {
        hint: 'mount a path of your own, e.g. in your home or project directory',
        detail,
      });
    case 'type':
      return userError('E_BAD_MOUNT', `cannot mount ${source} on ${target}: ${errno === 'ENOTDIR' ? 'a directory onto something in the image that is not a directory' : 'a file onto a directory of the image'}`, {
        hint: 'mount a directory on a directory and a file on a file, or choose a destination that does not exist in the image',
        detail,
      });
    default:
      // target, mount, verify: what the image or a user process put in the way.
      return userError('E_BAD_MOUNT', `cannot mount on ${target} in the image: it ${why}`, { hint: 'choose another destination in --container-mounts', detail });
  }
}

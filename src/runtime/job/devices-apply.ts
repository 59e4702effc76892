// Carrying out one CDI device step (devices-plan.ts) through the mount helper, and what a failure
// means. The sources are the admin's and the driver's files (opened as root, from a spec only root
// can write); the targets are in the image, so a target the image makes impossible (a directory
// where the driver's library goes, a link into the host's /dev) fails the job, not the node.

import { bindIntoRootfs } from '../../host/job-mounts.js';
import { checkDeviceNode, chmodInRootfs, symlinkInRootfs } from '../../host/device-ops.js';
import type { HelperReply } from '../../host/mount-helper.js';
import { nodeError, printable, userError, type StrataError } from '../../errors.js';
import { NODE_ERRNOS } from './bind-errors.js';
import type { DeviceStep } from './devices-plan.js';


const WHY: Record<string, string> = {
  ENOENT: 'a missing directory',
  ELOOP: 'a symbolic link loop (or a link strata does not follow there)',
  ENOTDIR: 'a component that is not a directory',
  EISDIR: 'a directory',
  EXDEV: 'a path that leads out of the image (into a bind mount)',
  EEXIST: 'a symbolic link that points nowhere',
  EROFS: 'a read-only directory',
  ENAMETOOLONG: 'too long a path',
};

export async function applyDeviceStep(step: DeviceStep, deny: string): Promise<void> {
  let reply: HelperReply;
  switch (step.op) {
    case 'device-bind':
      reply = await bindIntoRootfs({ ...step, uid: 0, gid: 0, optional: false, deny });
      break;
    case 'device-node':
      reply = await checkDeviceNode(step.rootfs, step.path, step.type, step.major, step.minor);
      break;
    case 'symlink':
      reply = await symlinkInRootfs(step.rootfs, step.link, step.target);
      break;
    case 'chmod':
      reply = await chmodInRootfs(step.rootfs, step.path, step.mode);
      break;
  }
  if (!reply.ok) throw deviceStepError(step, reply);
}

const containerPath = (step: DeviceStep) => (step.op === 'device-bind' ? step.target : step.op === 'symlink' ? step.link : step.path);

export function deviceStepError(step: DeviceStep, reply: HelperReply): StrataError {
  const errno = reply.value;
  const detail = `${step.op} ${reply.stage ?? 'helper'}: ${reply.message} (${errno})`;
  const path = printable(containerPath(step));
  if (NODE_ERRNOS.has(errno) || !reply.stage || reply.stage === 'mount' || reply.stage === 'deny') {
    return nodeError('E_CDI_APPLY', `cannot ${step.op} ${path} for device ${step.device} (CDI spec ${step.spec}): ${reply.message}`, { hint: 'check the node (strata doctor)', detail });
  }
  if (step.op === 'device-node') {
    // The container's /dev is the host's: what is (not) there is the node's business.
    return nodeError('E_CDI_DEVICE_MISMATCH', `device node ${path} for ${step.device} (CDI spec ${step.spec}) is not what the spec says: ${reply.message}`, {
      hint: 'regenerate the spec for the devices this node has now (nvidia-ctk cdi generate)',
      detail,
    });
  }
  if (reply.stage === 'source') {
    return userError('E_DEVICE_UNAVAILABLE', `device ${step.device} is not available on this node: file ${printable(step.op === 'device-bind' ? step.source : '')} named by CDI spec ${step.spec} cannot be opened`, {
      hint: 'ask for another device or node; the node admin should check the driver and regenerate the spec',
      detail,
    });
  }
  const why = WHY[errno] ?? reply.message.replace(/^[^:]*: /, '').toLowerCase();
  return userError('E_DEVICE_IMAGE', `the image cannot take device ${step.device}: it has ${why} at or above ${path}`, {
    hint: 'use an image without files at the paths the device needs, or run without the device',
    detail,
  });
}

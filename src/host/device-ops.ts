// The mount helper's CDI device operations inside a job's rootfs (helper/device-ops.c): a symbolic
// link, a mode change, a device node check. Container paths are resolved by the helper in the
// rootfs (openat2 RESOLVE_IN_ROOT) and writes land only on the rootfs's own overlay, never in a
// bind mount, whatever the image planted on the way.

import type { HelperReply } from './mount-helper.js';
import { requireHelper, timed } from './job-mounts.js';

/** Make `link` (container path) a symlink to `target`. ok: value "made" or "exists". */
export const symlinkInRootfs = (rootfs: string, link: string, target: string): Promise<HelperReply> => timed(requireHelper(), ['symlink', rootfs, link, target]);

/** Set the permission bits of `path` (container path) to `mode`. */
export const chmodInRootfs = (rootfs: string, path: string, mode: number): Promise<HelperReply> => timed(requireHelper(), ['chmod', rootfs, path, mode.toString(8)]);

/** Check that `path` (container path) is the device node `type` `major`:`minor`. */
export const checkDeviceNode = (rootfs: string, path: string, type: 'c' | 'b', major: number, minor: number): Promise<HelperReply> =>
  timed(requireHelper(), ['devnode', rootfs, path, type, major, minor]);

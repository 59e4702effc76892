// Unmounting what a job has mounted below its directory. The mount points there lie in a tree the
// job's user and image control, so nothing is unmounted by path: each mount is named by its id
// from mountinfo and the helper verifies, before unmounting, that the id is what the path leads to
// (host/job-mounts.ts). Busy mounts are retried, then detached lazily; a mount that cannot be
// reached any more by its path (a user renamed or swapped something) goes with a lazy detach of
// the rootfs overlay, whose path strata owns.

import { nodeError } from '../../errors.js';
import { unmountVerified } from '../../host/job-mounts.js';
import { mountsUnder, readMountinfo, type MountEntry } from '../../host/mountinfo.js';
import type { UnmountResult } from '../../host/mounts.js';

/** unreachable: the path no longer leads to this mount (teardown then detaches the rootfs). */
export type JobUnmountResult = UnmountResult | 'unreachable';

export interface UnmountOptions {
  retries?: number;
  delayMs?: number;
}

/** Mounts below `path`, each before the mount it sits on: the order to unmount them in. */
export function unmountOrder(table: MountEntry[], path: string, includeSelf: boolean): MountEntry[] {
  const under = mountsUnder(table, path);
  return includeSelf ? under : under.filter((entry) => entry.mountPoint !== path || stackedOnSamePath(table, entry));
}

/** A mount whose parent is mounted at the same path (a bind stacked on the rootfs). */
const stackedOnSamePath = (table: MountEntry[], entry: MountEntry) => table.some((parent) => parent.id === entry.parentId && parent.mountPoint === entry.mountPoint);

/**
 * Unmount one mount of the job, verified by id. `base` is the job's directory. Returns what
 * happened; throws only for a node fault (an errno that is neither busy nor gone).
 */
export async function unmountJobMount(base: string, entry: MountEntry, { retries = 20, delayMs = 50 }: UnmountOptions = {}): Promise<JobUnmountResult> {
  for (let attempt = 0; ; attempt++) {
    const lazy = attempt > retries;
    const reply = await unmountVerified(base, entry.mountPoint, entry.id, lazy);
    if (reply.ok) return lazy ? 'lazy' : 'unmounted';
    if (!readMountinfo(base).some((mounted) => mounted.id === entry.id)) return 'not-mounted';
    if (reply.stage === 'verify') return 'unreachable';
    if (reply.value !== 'EBUSY' || lazy) {
      throw nodeError('E_UNMOUNT', `cannot unmount ${entry.mountPoint}: ${reply.message}`, { hint: 'run `strata node gc` on this node', detail: reply.value });
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

// Mounts in and below a job's rootfs, a tree its user and its image control. These never take a
// path string to mount(2): the mount helper resolves every path once, into a descriptor, opens bind
// sources as the job's user, and verifies a mount's id before unmounting it (helper/job-mounts.c,
// docs/security.md). There is no util-linux fallback for them: mount(8) follows whatever a path
// names at the moment it runs, which is exactly the race this closes.

import { relative } from 'node:path';
import { nodeError } from '../errors.js';
import { recordCommand } from './exec.js';
import { MNT_DETACH, mountExecutor, type HelperReply, type MountHelper } from './mount-helper.js';

/** What one bind into a rootfs asks for. */
export interface RootfsBind {
  /** Host path, opened as `uid`/`gid`. */
  source: string;
  rootfs: string;
  /** Container path, resolved inside the rootfs. */
  target: string;
  uid: number;
  gid: number;
  readonly: boolean;
  recursive: boolean;
  /** Keep device nodes usable (the container's /dev). */
  keepDev: boolean;
  /** A missing source is skipped, not an error. */
  optional: boolean;
  /** Create a missing target (and its parents) in the rootfs. */
  create: boolean;
  /** A source that resolves into this directory is refused (strata's runtime dir). */
  deny?: string;
  /** A filesystem the job owns (its /tmp, by a path in it) where missing targets may be created too. */
  createAlsoIn?: string;
  /** No execution from the mount (a CDI spec's `noexec`). */
  noexec?: boolean;
  /** Skipped when the target exists in the rootfs (made only if missing). */
  ifAbsent?: boolean;
  /** The user's group list the source is opened with (else the helper asks the name service). */
  groups?: number[];
}

/** Mirrors the bit values in helper/job-mounts.c. */
const BIND_FLAGS = { readonly: 1, recursive: 2, keepDev: 4, optional: 8, create: 16, noexec: 32, ifAbsent: 64 } as const;

export function bindFlags(bind: Pick<RootfsBind, keyof typeof BIND_FLAGS>): number {
  let flags = 0;
  for (const [name, bit] of Object.entries(BIND_FLAGS)) if (bind[name as keyof typeof BIND_FLAGS]) flags |= bit;
  return flags;
}

/** The mount helper, or the node fault that says how to get it. */
export function requireHelper(): MountHelper {
  const helper = mountExecutor();
  if (!helper) {
    throw nodeError('E_NO_HELPER', 'the mount helper (dist/helper/strata-mount) is needed to mount into a job\'s rootfs safely, and it is not built or is disabled', {
      hint: 'install a C compiler and run `npm run build` (or unset STRATA_MOUNT_HELPER=none)',
    });
  }
  return helper;
}

/** One helper request, timed into the exec log. */
export async function timed(helper: MountHelper, fields: (string | number)[]): Promise<HelperReply> {
  const started = performance.now();
  const reply = await helper.request(fields);
  recordCommand(`strata-mount ${fields.join(' ')}`, performance.now() - started);
  return reply;
}

/**
 * Bind one source into the rootfs. ok: value is the new mount's id, or "skipped". `helper` is the
 * node's mount helper unless given (tests drive their own, so the protocol is spelled only here).
 */
export function bindIntoRootfs(bind: RootfsBind, helper: MountHelper = requireHelper()): Promise<HelperReply> {
  return timed(helper, ['bind', bind.source, bind.rootfs, bind.target, bindFlags(bind), bind.uid, bind.gid, bind.deny || '-', bind.createAlsoIn || '-', bind.groups?.length ? bind.groups.join(',') : '-']);
}

/**
 * Unmount the mount `mountId` at `mountPoint` (its mountinfo path), which must lie below `base`
 * (a directory strata owns): refused with stage "verify" if what is there now is another mount.
 */
export function unmountVerified(base: string, mountPoint: string, mountId: number, lazy: boolean, helper?: MountHelper): Promise<HelperReply> {
  const below = relative(base, mountPoint);
  if (!below || below.startsWith('..')) return Promise.resolve({ ok: false, value: 'EINVAL', message: `${mountPoint} is not below ${base}`, stage: 'verify' });
  return timed(helper ?? requireHelper(), ['umountv', base, below, mountId, lazy ? MNT_DETACH : 0]);
}

/** Make the mount at `target` (a path strata owns) read-only; the mounts on top keep their own flags. */
export function makeMountReadonly(target: string): Promise<HelperReply> {
  return timed(requireHelper(), ['readonly', target]);
}

/**
 * Read the regular file at container path `path` of a rootfs (image content) through the helper,
 * confined to the rootfs: ok: value is the content as hex; not ok: stage "target"/"type" for what
 * the image put there (missing, a symbolic link, not a regular file, larger than `max`).
 */
export function readImageFile(rootfs: string, path: string, max: number): Promise<HelperReply> {
  return timed(requireHelper(), ['readfile', rootfs, path, max]);
}

/**
 * Attach at `target` (a directory strata owns) a read-only clone of the mount at `source` (strata's
 * too), idmapped so that the files on-disk uid/gid 0 own show as `uid`/`gid`, every other id as
 * itself (helper/remap.c). ok: value is the new mount's id.
 */
export function idmappedClone(source: string, target: string, uid: number, gid: number): Promise<HelperReply> {
  return timed(requireHelper(), ['idmap', source, target, uid, gid]);
}

/**
 * Create the new file `name` in container directory `dir` of a rootfs (on the rootfs mount itself,
 * never in a bind), owned by `uid`/`gid`. ok: value "skipped" when the image has no such
 * directory, "exists" when the name is taken (left as it is).
 */
export function putFileInRootfs(rootfs: string, dir: string, name: string, content: string, uid: number, gid: number, helper: MountHelper = requireHelper()): Promise<HelperReply> {
  return timed(helper, ['putfile', rootfs, dir, name, Buffer.from(content).toString('hex'), uid, gid]);
}

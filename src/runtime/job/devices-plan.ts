// CDI container edits (src/runtime/devices) as plan steps, entry environment and groups. Pure.
//
// Where each edit goes, and why (docs/gpus.md, docs/decisions.md "The container's /dev"):
// - The container's /dev, /proc and /sys are the host's (recursive binds). Nothing strata does for
//   a device may write there: that would be a root write on the host. A device node under /dev is
//   therefore checked, not made (it must be in the host's /dev at the same path); links, modes and
//   new mount points under those trees are not made; a spec mount onto an existing path there is
//   bound without creating anything.
// - Every other edit is planned "early": right after the overlay is mounted and before any other
//   bind, so the targets, links and modes resolve (RESOLVE_IN_ROOT) through the image's own tree
//   only and are made in the job's upper layer. A hostile image's symlink can then only lead to
//   another place in the same overlay, never into a bind mount (the host's /dev, a home directory).
// - `update-ldcache` becomes LD_LIBRARY_PATH (appended after the image's own), not an ld.so.cache:
//   no ldconfig runs as root over image content (CVE-2024-0132/0133), and nothing is written to the
//   image's /etc/ld.so.cache or ld.so.conf.d. Apptainer's --nv does the same.

import { posix } from 'node:path';
import { nodeError } from '../../errors.js';
import type { ContainerEdits, HookEdit } from '../devices/index.js';
import { mergeEnv } from '../devices/index.js';

interface Origin {
  /** The device (or `vendor/class` for a spec's common edits) and spec file, for messages. */
  device: string;
  spec: string;
}

export type DeviceStep =
  /** A host file or device node bound into the rootfs, opened as root (admin and driver files). */
  | ({ op: 'device-bind'; rootfs: string; source: string; target: string; readonly: boolean; recursive: boolean; keepDev: boolean; noexec: boolean; create: boolean } & Origin)
  /** The device node the container sees at `path` (the host's /dev) is the one the spec names. */
  | ({ op: 'device-node'; rootfs: string; path: string; type: 'c' | 'b'; major: number; minor: number } & Origin)
  | ({ op: 'symlink'; rootfs: string; link: string; target: string } & Origin)
  | ({ op: 'chmod'; rootfs: string; path: string; mode: number } & Origin);

export interface DevicePlan {
  /** Right after the overlay, before any other bind. */
  early: DeviceStep[];
  /** After every bind (the host's /dev, /proc and /sys are there). */
  late: DeviceStep[];
  /** Entries to merge into the image's environment with mergeEnv. */
  env: string[];
  additionalGids: number[];
  /** What was deliberately not done, for the admin log. */
  notes: string[];
}

/** The trees the container shares with the host. */
const HOST_TREES = ['/dev', '/proc', '/sys'];
const inHostTree = (path: string) => HOST_TREES.some((tree) => path === tree || path.startsWith(`${tree}/`));

export function planDevices(rootfs: string, edits: ContainerEdits): DevicePlan {
  const plan: DevicePlan = { early: [], late: [], env: [...edits.env], additionalGids: [...edits.additionalGids], notes: [] };
  const origin = (edit: Origin): Origin => ({ device: edit.device, spec: edit.spec });

  for (const node of edits.deviceNodes) {
    if (node.type === 'p') {
      throw nodeError('E_CDI_UNSUPPORTED', `CDI spec ${node.spec} asks for a fifo ${node.path} for ${node.device}, which strata does not support`, { hint: 'remove it from the spec' });
    }
    if (!inHostTree(node.path)) {
      plan.early.push({ op: 'device-bind', rootfs, source: node.hostPath, target: node.path, readonly: false, recursive: false, keepDev: true, noexec: false, create: true, ...origin(node) });
      continue;
    }
    if (node.hostPath !== node.path || !node.path.startsWith('/dev/')) {
      throw nodeError('E_CDI_UNSUPPORTED', `CDI spec ${node.spec} puts device node ${node.hostPath} at ${node.path} for ${node.device}; the container's /dev is the host's, so a node under /dev must be at its host path`, {
        hint: 'generate the spec with the same path and hostPath for /dev nodes (nvidia-ctk does)',
      });
    }
    if (node.fileMode !== undefined || node.uid !== undefined || node.gid !== undefined) {
      plan.notes.push(`${node.path}: the spec's owner and mode are not applied (the node is the host's own)`);
    }
    plan.late.push({ op: 'device-node', rootfs, path: node.path, type: node.type, major: node.major, minor: node.minor, ...origin(node) });
  }

  for (const mount of edits.mounts) {
    const late = inHostTree(mount.containerPath);
    (late ? plan.late : plan.early).push({
      op: 'device-bind',
      rootfs,
      source: mount.hostPath,
      target: mount.containerPath,
      readonly: mount.readonly,
      recursive: mount.recursive,
      keepDev: !mount.flags.includes('nodev'),
      noexec: mount.flags.includes('noexec'),
      // Nothing is made in the host's trees: the target must already be there.
      create: !late,
      ...origin(mount),
    });
  }

  for (const hook of edits.hooks) planHook(hook, rootfs, plan, edits);
  if (plan.additionalGids.length) {
    // slurmstepd sets the task's groups (the user's own) after the plugin's last privileged hook,
    // so a SPANK plugin cannot add any; `strata exec` runs unprivileged.
    plan.notes.push(`additionalGIDs ${plan.additionalGids.join(',')}: recorded in entry.json, not given to the job's processes (add the users to the group)`);
  }
  return plan;
}

function planHook(hook: HookEdit, rootfs: string, plan: DevicePlan, edits: ContainerEdits) {
  const { action } = hook;
  const from = { device: hook.device, spec: hook.spec };
  switch (action.kind) {
    case 'create-symlinks':
      for (const link of action.links) {
        if (inHostTree(link.link)) plan.notes.push(`create-symlinks: ${link.link} not made (the container's ${link.link.split('/')[1]} is the host's)`);
        else plan.early.push({ op: 'symlink', rootfs, link: link.link, target: link.target, ...from });
      }
      return;
    case 'update-ldcache':
      if (action.folders.length) plan.env.push(`LD_LIBRARY_PATH=${action.folders.join(':')}`);
      // The links ldconfig would make: soname -> file, for the libraries bound into the folders
      // (the dynamic loader asks for libcuda.so.1, the spec binds libcuda.so.550.54.15).
      for (const mount of edits.mounts) {
        const dir = posix.dirname(mount.containerPath);
        const file = posix.basename(mount.containerPath);
        if (!mount.soname || mount.soname === file || !action.folders.includes(dir) || inHostTree(dir)) continue;
        const link = posix.join(dir, mount.soname);
        if (!plan.early.some((step) => step.op === 'symlink' && step.link === link)) plan.early.push({ op: 'symlink', rootfs, link, target: file, ...from });
      }
      return;
    case 'chmod':
      for (const path of action.paths) {
        if (inHostTree(path)) plan.notes.push(`chmod: ${path} left as it is (the container's ${path.split('/')[1]} is the host's)`);
        else plan.early.push({ op: 'chmod', rootfs, path, mode: action.mode, ...from });
      }
      return;
    case 'enable-cuda-compat':
      plan.notes.push(`enable-cuda-compat: not applied; an image that needs its CUDA forward-compatibility libraries puts ${action.compatRoot} in its own LD_LIBRARY_PATH`);
      return;
    case 'disable-device-node-modification':
      // The job's processes cannot create device nodes anyway: no root, no_new_privs, nosuid.
      plan.notes.push('disable-device-node-modification: not needed (job processes cannot create device nodes)');
      return;
    case 'skipped':
      plan.notes.push(`${action.name}: skipped (${action.reason})`);
      return;
    case 'external':
      throw nodeError('E_CDI_HOOK', `CDI spec ${hook.spec} asks to run hook ${action.path} for ${hook.device}; strata runs no hook programs (devices.allow_unknown_hooks does not change that)`, {
        hint: 'remove the hook from the spec',
      });
  }
}

/**
 * The admin's warning for the groups a CDI spec gives the container that the job's user is not in
 * (`userGroups`: the user's groups from the node's name service; undefined when it did not answer).
 * strata cannot add groups to a job's processes (docs/decisions.md), so such a device may be
 * denied to the job; undefined when the user has them all.
 */
export function missingGroupsNote(uid: number, gids: readonly number[], userGroups: readonly number[] | undefined): string | undefined {
  if (!gids.length) return undefined;
  if (!userGroups) return `additionalGIDs ${gids.join(',')}: the name service did not answer, so whether uid ${uid} is in them is unknown; strata cannot add them`;
  const missing = gids.filter((gid) => !userGroups.includes(gid));
  if (!missing.length) return undefined;
  return `additionalGIDs: uid ${uid} is not in group ${missing.join(',')}, which the CDI spec gives the container and strata cannot add to a job's processes: the device may be denied to the job (add the user to the group on the node)`;
}

/** The entry environment: the image's, with the devices' entries merged (search paths appended). */
export const deviceEnv = (imageEnv: readonly string[], plan: Pick<DevicePlan, 'env'>): string[] => (plan.env.length ? mergeEnv(imageEnv, plan.env) : [...imageEnv]);

// The device support's one entry point for the job runtime: from the site's configuration, the
// job's requests and the image's environment to the merged container edits (or none). Reads the
// spec directories and stats the host paths the chosen devices name; everything else is the pure
// modules next to this file. The runtime applies the result (nodes, binds, env, gids, hook
// actions) as ordinary journaled steps; see docs/gpus.md for what is wired in.

import type { Config } from '../../config/types.js';
import { buildContainerEdits, NO_EDITS, type ContainerEdits } from './edits.js';
import { gatherHostFacts, hostPathsOf } from './host-facts.js';
import { loadSpecDirs, type LoadOptions } from './load.js';
import type { QualifiedName } from './names.js';
import { buildRegistry, resolveDevices, type DeviceRegistry } from './registry.js';
import { deviceRequests } from './requests.js';
import { readSoname } from './soname.js';

export interface JobDevicesInput {
  /** The user's explicit requests (parseDeviceRequests of --container-devices). */
  explicit: readonly QualifiedName[];
  /** The image configuration's Env. */
  imageEnv: readonly string[];
  /** The prolog's environment (SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES). */
  jobEnv: Readonly<Record<string, string | undefined>>;
}

export interface JobDevices {
  edits: ContainerEdits;
  /** Why automatic requests were or were not made, for the admin log. */
  notes: string[];
}

/** This node's CDI devices, from the configured spec directories. */
export function loadRegistry(config: Pick<Config, 'devices'>, options: LoadOptions = {}): DeviceRegistry {
  const { specs, problems } = loadSpecDirs(config.devices.specDirs, options);
  return buildRegistry(specs, problems, config.devices.specDirs);
}

/**
 * The container edits for one job on this node. Throws a StrataError: `user` for a device the
 * node does not offer or whose host files are missing, `node` for a spec strata cannot use.
 * A job that cannot get a device (no request, no site default, no CUDA image) reads no spec at all:
 * the prolog of a job without GPUs stays as fast as before.
 */
export function jobDevices(config: Pick<Config, 'devices'>, input: JobDevicesInput, options: LoadOptions = {}): JobDevices {
  const cuda = input.imageEnv.some((entry) => entry.startsWith('NVIDIA_VISIBLE_DEVICES='));
  if (!input.explicit.length && !config.devices.defaultRequests.length && !cuda) return { edits: NO_EDITS, notes: [] };
  const registry = loadRegistry(config, options);
  const { requests, notes } = deviceRequests({ ...input, registry, settings: config.devices });
  if (!requests.length) return { edits: NO_EDITS, notes };
  const devices = resolveDevices(registry, requests);
  const host = gatherHostFacts(hostPathsOf(devices));
  const edits = buildContainerEdits(devices, host, { allowUnknownHooks: config.devices.allowUnknownHooks });
  return { edits: withSonames(edits, readSoname), notes };
}

/**
 * The edits with each bound shared library's soname: the runtime makes the `soname -> file` links
 * ldconfig would make in update-ldcache's folders (it runs no ldconfig). Only files whose name
 * says shared library are read.
 */
export function withSonames(edits: ContainerEdits, soname: (hostPath: string) => string | undefined): ContainerEdits {
  const mounts = edits.mounts.map((mount) => {
    if (mount.sourceKind !== 'file' || !/\.so(\.|$)/.test(mount.hostPath)) return mount;
    const name = soname(mount.hostPath);
    return name ? { ...mount, soname: name } : mount;
  });
  return { ...edits, mounts };
}

export { appendSearchPath, mergeEnv, searchPathAdditions } from './env.js';
export { parseDeviceRequests } from './requests.js';
export type { ContainerEdits, DeviceNodeEdit, HookEdit, MountEdit } from './edits.js';
export type { HookAction, SymlinkAction } from './hooks.js';

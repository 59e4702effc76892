// Which devices a job gets: the site's default requests, the user's `--container-devices`, and
// the automatic NVIDIA request (an image whose environment sets NVIDIA_VISIBLE_DEVICES, as every
// CUDA image does, gets the GPUs Slurm allocated to the job). The image's value never widens what
// the job gets: image content is untrusted, only `void`/`none`/empty (opting out) is honoured.

import { nodeError, userError } from '../../errors.js';
import { ALL_DEVICES, kindOf, parseQualifiedName, qualified, quoteName, type QualifiedName } from './names.js';
import { devicesOfKind, type DeviceRegistry } from './registry.js';

/** The option as users and scheduler plug-ins spell it. */
export const DEVICES_OPTION = '--container-devices';
/** The kind nvidia-ctk writes, and the one the automatic request uses. */
export const NVIDIA_GPU_KIND = 'nvidia.com/gpu';
/** More than any node has devices; bounds work on a hostile request. */
const MAX_REQUESTS = 256;

/** `vendor.com/class=name[,...]` as the user typed it: each name once, in order. Empty means none. */
export function parseDeviceRequests(text: string | undefined, option = DEVICES_OPTION): QualifiedName[] {
  if (text === undefined || !text.trim()) return [];
  const entries = text.split(',').map((entry) => entry.trim());
  if (entries.length > MAX_REQUESTS) throw userError('E_BAD_DEVICE', `${option} names ${entries.length} devices, more than ${MAX_REQUESTS}`, { hint: `use kind=${ALL_DEVICES}` });
  const out = new Map<string, QualifiedName>();
  for (const entry of entries) {
    if (!entry) throw userError('E_BAD_DEVICE', `${option} has an empty entry`, { hint: 'separate device names with single commas' });
    const parsed = parseQualifiedName(entry);
    if ('problem' in parsed) {
      throw userError('E_BAD_DEVICE', `invalid ${option} entry ${quoteName(entry)}: ${parsed.problem}`, { hint: 'name devices as vendor.com/class=name, e.g. nvidia.com/gpu=0 or nvidia.com/gpu=all' });
    }
    out.set(qualified(parsed), parsed);
  }
  return [...out.values()];
}

export interface DeviceSettings {
  /** Requests added to every container job on nodes that offer them (config `devices.default_requests`). */
  defaultRequests: readonly string[];
  /** A CUDA image in a job with no GPUs allocated gets all of the node's GPUs (config `devices.auto_all`). */
  autoAll: boolean;
}

export interface RequestInput {
  /** The user's explicit requests (parseDeviceRequests). */
  explicit: readonly QualifiedName[];
  /** The image configuration's Env (untrusted). */
  imageEnv: readonly string[];
  /** The scheduler's environment of the prolog: SLURM_JOB_GPUS, CUDA_VISIBLE_DEVICES. */
  jobEnv: Readonly<Record<string, string | undefined>>;
  registry: DeviceRegistry;
  settings: DeviceSettings;
}

export interface DeviceRequests {
  requests: QualifiedName[];
  /** Why each automatic request was (not) made, for the admin log. */
  notes: string[];
}

export function deviceRequests(input: RequestInput): DeviceRequests {
  const notes: string[] = [];
  const out = new Map<string, QualifiedName>();
  const add = (name: QualifiedName) => out.set(qualified(name), name);
  for (const text of input.settings.defaultRequests) {
    const parsed = parseQualifiedName(text);
    // Validated with the configuration; a default the node does not offer is simply not added,
    // so one strata.yaml serves nodes with and without (say) InfiniBand devices.
    if ('problem' in parsed) continue;
    const offered = parsed.name === ALL_DEVICES ? devicesOfKind(input.registry, kindOf(parsed)).length > 0 : input.registry.devices.has(text);
    if (offered) add(parsed);
    else notes.push(`site default ${text} not offered here`);
  }
  input.explicit.forEach(add);
  const gpus = nvidiaRequests(input, notes);
  gpus.forEach(add);
  return { requests: [...out.values()], notes };
}

/** NVIDIA_VISIBLE_DEVICES of an image env: undefined when unset. */
const imageVisibleDevices = (env: readonly string[]) => {
  const entry = [...env].reverse().find((line) => line.startsWith('NVIDIA_VISIBLE_DEVICES='));
  return entry?.slice('NVIDIA_VISIBLE_DEVICES='.length);
};

function nvidiaRequests(input: RequestInput, notes: string[]): QualifiedName[] {
  const wanted = imageVisibleDevices(input.imageEnv);
  if (wanted === undefined) return [];
  if (['', 'void', 'none'].includes(wanted.trim().toLowerCase())) return notes.push(`image opts out of GPUs (NVIDIA_VISIBLE_DEVICES=${wanted.trim() || '""'})`), [];
  if (input.explicit.some((request) => kindOf(request) === NVIDIA_GPU_KIND)) return notes.push('GPUs requested explicitly'), [];
  const gpus = devicesOfKind(input.registry, NVIDIA_GPU_KIND);
  if (!gpus.length) return notes.push(`image asks for GPUs, this node has no ${NVIDIA_GPU_KIND} CDI spec`), [];
  const [vendor, cls] = NVIDIA_GPU_KIND.split('/');
  const allocated = allocatedGpus(input.jobEnv);
  if (!allocated.length) {
    if (input.settings.autoAll) return notes.push('no GPUs allocated: all GPUs (devices.auto_all)'), [{ vendor, class: cls, name: ALL_DEVICES }];
    return notes.push('image asks for GPUs, the job has none allocated'), [];
  }
  return allocated.map((id) => ({ vendor, class: cls, name: gpuDeviceName(id, input.registry) }));
}

/** The job's GPUs as the scheduler lists them (host indices, or UUIDs), each once. */
export function allocatedGpus(env: Readonly<Record<string, string | undefined>>): string[] {
  const list = env.SLURM_JOB_GPUS?.trim() || env.CUDA_VISIBLE_DEVICES?.trim() || '';
  // Slurm sets NoDevFiles when GPUs are configured but none was allocated.
  if (!list || list === 'NoDevFiles') return [];
  return [...new Set(list.split(',').map((id) => id.trim()).filter(Boolean))];
}

/**
 * The CDI device name of one allocated GPU. Slurm's index is the gres.conf order, which is the
 * device node's minor number (File=/dev/nvidia[0-N]); nvidia-ctk names devices by NVML index or
 * UUID, which need not agree. So the device whose own node is /dev/nvidia<index> is preferred,
 * then a device named like the index or UUID itself.
 */
export function gpuDeviceName(id: string, registry: DeviceRegistry): string {
  const gpus = devicesOfKind(registry, NVIDIA_GPU_KIND).filter((gpu) => gpu.name !== ALL_DEVICES);
  if (/^\d+$/.test(id)) {
    const byNode = gpus.filter((gpu) => gpu.device.containerEdits.deviceNodes?.some((node) => (node.hostPath ?? node.path) === `/dev/nvidia${id}`));
    if (byNode.length === 1) return byNode[0].name;
  }
  const byName = gpus.find((gpu) => gpu.name === id);
  if (byName) return byName.name;
  throw nodeError('E_CDI_GPU_MAP', `GPU ${quoteName(id)} allocated by the scheduler has no ${NVIDIA_GPU_KIND} device in this node's CDI specs (${[...new Set(gpus.map((gpu) => gpu.spec.path))].join(', ')})`, {
    hint: 'regenerate the spec (nvidia-ctk cdi generate) and check gres.conf against it',
  });
}

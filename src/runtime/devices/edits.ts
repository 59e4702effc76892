// The one function that turns resolved CDI devices into what the job's container must get:
// device nodes, bind mounts, environment entries, extra groups and hook actions, merged across
// devices and specs and checked against the host. Pure: the host is given as facts
// (host-facts.ts). Order follows the CDI reference (pkg/cdi/cache.go InjectDevices): each
// device's own edits in request order, then each spec's common edits once.
//
// Failures say whose they are: a device whose spec names a host file that is not there fails the
// job (the resource may appear later, e.g. a driver not loaded yet; SPEC.md "Error Handling");
// a spec asking for something strata cannot or will not do (another filesystem type, a hook it
// does not implement, a device node that is not what the spec says) is the node's fault.

import { nodeError, userError } from '../../errors.js';
import { mergeEnv } from './env.js';
import { classifyHook, NATIVE_HOOKS, type HookAction } from './hooks.js';
import type { HostFacts } from './host-facts.js';
import { bindOptions } from './mount-options.js';
import { qualified } from './names.js';
import type { OfferedDevice } from './registry.js';
import type { CdiEdits, LoadedSpec } from './spec-types.js';
import { canonicalPath } from './spec-validate.js';

/** Where an edit came from, for messages and the admin log. */
export interface EditOrigin {
  /** `vendor.com/class=name`, or `vendor.com/class` for a spec's common edits. */
  device: string;
  /** The spec file. */
  spec: string;
}

export interface DeviceNodeEdit extends EditOrigin {
  /** Path inside the container. */
  path: string;
  hostPath: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  /** Permission bits for the node in the container; absent: as on the host. */
  fileMode?: number;
  /** cgroup access, letters of `rwm` ('' for none). */
  permissions: string;
  uid?: number;
  gid?: number;
}

export interface MountEdit extends EditOrigin {
  hostPath: string;
  containerPath: string;
  /** What the source is, so the target can be made as a file or a directory. */
  sourceKind: 'file' | 'dir' | 'char' | 'block' | 'fifo' | 'other';
  readonly: boolean;
  recursive: boolean;
  /** nosuid/nodev (unless the spec asked for suid/dev), noexec, atime flags. */
  flags: string[];
  /** A shared library's DT_SONAME (read from the host file by jobDevices), for the ld links. */
  soname?: string;
}

export interface HookEdit extends EditOrigin {
  action: HookAction;
}

export interface ContainerEdits {
  /** The devices these edits are for, fully qualified, in request order. */
  devices: string[];
  deviceNodes: DeviceNodeEdit[];
  mounts: MountEdit[];
  /** NAME=VALUE entries to merge into the entry environment with mergeEnv (env.ts). */
  env: string[];
  /** Groups to add to the job's processes (0 dropped), ascending. */
  additionalGids: number[];
  /** In the order the specs list them (each distinct action once); the applier runs them in this order. */
  hooks: HookEdit[];
}

export interface EditOptions {
  /** Keep hooks strata does not implement as `external` actions (devices.allow_unknown_hooks); planning still refuses them. */
  allowUnknownHooks: boolean;
}

export const NO_EDITS: ContainerEdits = { devices: [], deviceNodes: [], mounts: [], env: [], additionalGids: [], hooks: [] };

const TYPE_OF_KIND: Record<string, DeviceNodeEdit['type'] | undefined> = { char: 'c', block: 'b', fifo: 'p' };

export function buildContainerEdits(devices: readonly OfferedDevice[], host: HostFacts, options: EditOptions): ContainerEdits {
  const out: ContainerEdits = { devices: devices.map(qualified), deviceNodes: [], mounts: [], env: [], additionalGids: [], hooks: [] };
  const gids = new Set<number>();
  const specs = new Map<string, LoadedSpec>();
  const sources: { edits: CdiEdits; origin: EditOrigin; device: string }[] = [];
  for (const device of devices) {
    const name = qualified(device);
    sources.push({ edits: device.device.containerEdits, origin: { device: name, spec: device.spec.path }, device: name });
    if (!specs.has(device.spec.path)) specs.set(device.spec.path, device.spec);
  }
  for (const spec of specs.values()) {
    if (!spec.spec.containerEdits) continue;
    const requested = devices.find((device) => device.spec === spec)!;
    sources.push({ edits: spec.spec.containerEdits, origin: { device: `${spec.vendor}/${spec.class}`, spec: spec.path }, device: qualified(requested) });
  }
  for (const { edits, origin, device } of sources) {
    if (edits.intelRdt || edits.netDevices?.length) {
      throw nodeError('E_CDI_UNSUPPORTED', `CDI spec ${origin.spec} asks for ${edits.intelRdt ? 'intelRdt' : 'netDevices'} for ${device}, which strata does not support`, { hint: 'remove it from the spec, or do not offer this device to container jobs' });
    }
    for (const node of edits.deviceNodes ?? []) addNode(out, deviceNode(node, origin, device, host));
    for (const mount of edits.mounts ?? []) addMount(out, mountEdit(mount, origin, device, host));
    out.env = mergeEnv(out.env, edits.env ?? []);
    for (const gid of edits.additionalGids ?? []) if (gid !== 0) gids.add(gid);
    for (const hook of edits.hooks ?? []) {
      const edit = hookEdit(hook, origin, device, options);
      if (!out.hooks.some((other) => JSON.stringify(other.action) === JSON.stringify(edit.action))) out.hooks.push(edit);
    }
  }
  out.additionalGids = [...gids].sort((a, b) => a - b);
  return out;
}

type CdiNode = NonNullable<CdiEdits['deviceNodes']>[number];
type CdiMountEntry = NonNullable<CdiEdits['mounts']>[number];
type CdiHookEntry = NonNullable<CdiEdits['hooks']>[number];

function missing(what: string, hostPath: string, origin: EditOrigin, device: string) {
  return userError('E_DEVICE_UNAVAILABLE', `device ${device} is not available on this node: ${what} ${hostPath} named by CDI spec ${origin.spec} does not exist`, {
    hint: 'ask for another device or node; the node admin should check the driver and regenerate the spec',
  });
}

function deviceNode(node: CdiNode, origin: EditOrigin, device: string, host: HostFacts): DeviceNodeEdit {
  const hostPath = node.hostPath ?? node.path;
  const info = host.get(hostPath);
  if (!info) throw missing('device node', hostPath, origin, device);
  const actual = TYPE_OF_KIND[info.kind];
  const wanted = node.type === 'u' ? 'c' : node.type || undefined;
  const mismatch = (what: string) =>
    nodeError('E_CDI_DEVICE_MISMATCH', `CDI spec ${origin.spec}: ${hostPath} for ${device} ${what}`, { hint: 'regenerate the spec for the devices this node has now (nvidia-ctk cdi generate)' });
  if (!actual) throw mismatch(`is a ${info.kind}, not a device node`);
  if (wanted && wanted !== actual) throw mismatch(`is type ${actual} on the host, the spec says ${node.type}`);
  if ((node.major !== undefined && node.major !== info.major) || (node.minor !== undefined && node.minor !== info.minor)) {
    throw mismatch(`is ${info.major}:${info.minor} on the host, the spec says ${node.major ?? info.major}:${node.minor ?? info.minor}`);
  }
  return {
    ...origin,
    path: canonicalPath(node.path),
    hostPath,
    type: actual,
    major: info.major ?? 0,
    minor: info.minor ?? 0,
    ...(node.fileMode !== undefined ? { fileMode: node.fileMode & 0o7777 } : {}),
    permissions: node.permissions === 'none' ? '' : node.permissions || 'rwm',
    ...(node.uid !== undefined ? { uid: node.uid } : {}),
    ...(node.gid !== undefined ? { gid: node.gid } : {}),
  };
}

function addNode(out: ContainerEdits, node: DeviceNodeEdit) {
  const other = out.deviceNodes.find((existing) => existing.path === node.path);
  if (!other) return void out.deviceNodes.push(node);
  if (other.hostPath !== node.hostPath || other.major !== node.major || other.minor !== node.minor) {
    throw nodeError('E_CDI_CONFLICT', `CDI device node ${node.path} is ${other.hostPath} for ${other.device} (${other.spec}) and ${node.hostPath} for ${node.device} (${node.spec})`, { hint: 'fix the specs so that one container path means one host device' });
  }
}

function mountEdit(mount: CdiMountEntry, origin: EditOrigin, device: string, host: HostFacts): MountEdit {
  const parsed = bindOptions(mount.type, mount.options);
  if ('problem' in parsed) throw nodeError('E_CDI_SPEC', `CDI spec ${origin.spec}: mount of ${mount.hostPath} for ${device}: ${parsed.problem}`, { hint: 'fix the spec on this node' });
  const info = host.get(mount.hostPath);
  if (!info) throw missing('file', mount.hostPath, origin, device);
  return { ...origin, hostPath: mount.hostPath, containerPath: canonicalPath(mount.containerPath), sourceKind: info.kind, ...parsed };
}

function addMount(out: ContainerEdits, mount: MountEdit) {
  const other = out.mounts.find((existing) => existing.containerPath === mount.containerPath);
  if (!other) return void out.mounts.push(mount);
  if (other.hostPath !== mount.hostPath || other.readonly !== mount.readonly) {
    throw nodeError('E_CDI_CONFLICT', `CDI mount target ${mount.containerPath} is ${other.hostPath} for ${other.device} (${other.spec}) and ${mount.hostPath} for ${mount.device} (${mount.spec})`, { hint: 'fix the specs so that one container path means one host file' });
  }
}

function hookEdit(hook: CdiHookEntry, origin: EditOrigin, device: string, options: EditOptions): HookEdit {
  const classified = classifyHook(hook);
  if ('problem' in classified) throw nodeError('E_CDI_SPEC', `CDI spec ${origin.spec}: hook for ${device}: ${classified.problem}`, { hint: 'regenerate or fix the spec on this node' });
  if (classified.action.kind === 'external' && !options.allowUnknownHooks) {
    const command = [hook.path, ...(hook.args ?? []).slice(1)].join(' ');
    throw nodeError('E_CDI_HOOK', `CDI spec ${origin.spec} asks to run hook "${command}" for ${device}; strata carries out only NVIDIA's ${NATIVE_HOOKS.join(', ')} hooks itself`, {
      // Not "allow it": strata runs no hook program, whatever devices.allow_unknown_hooks says.
      hint: 'remove the hook from the spec; strata runs no hook programs (devices.allow_unknown_hooks does not change that)',
    });
  }
  return { ...origin, action: classified.action };
}

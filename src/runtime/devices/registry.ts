// The devices a node offers: every loaded spec's devices by fully qualified name, with the CDI
// rule for clashes (pkg/cdi/cache.go): a spec from a later directory (higher priority) wins; two
// specs of the same priority defining the same name make that name unusable and are both reported.
// Pure: built from loaded specs, resolves requests to devices.

import { nodeError, userError } from '../../errors.js';
import { ALL_DEVICES, kindOf, qualified, type QualifiedName } from './names.js';
import type { CdiDevice, LoadedSpec, SpecProblem } from './spec-types.js';

export interface OfferedDevice extends QualifiedName {
  device: CdiDevice;
  spec: LoadedSpec;
}

export interface DeviceRegistry {
  /** Usable devices by fully qualified name, in load order. */
  devices: Map<string, OfferedDevice>;
  /** Broken or untrusted files and name clashes: node faults. */
  problems: SpecProblem[];
  /** Names two specs of the same priority both define (not usable). */
  conflicts: Set<string>;
  /** The spec directories, for messages. */
  dirs: readonly string[];
}

export function buildRegistry(specs: readonly LoadedSpec[], problems: readonly SpecProblem[], dirs: readonly string[]): DeviceRegistry {
  const devices = new Map<string, OfferedDevice>();
  const conflicts = new Set<string>();
  const found: SpecProblem[] = [...problems];
  for (const spec of specs) {
    for (const device of spec.spec.devices) {
      const offered: OfferedDevice = { vendor: spec.vendor, class: spec.class, name: device.name, device, spec };
      const name = qualified(offered);
      const other = devices.get(name);
      if (other && other.spec.priority === spec.priority) {
        conflicts.add(name);
        for (const path of [other.spec.path, spec.path]) found.push({ path, message: `device ${name} is also defined in ${path === spec.path ? other.spec.path : spec.path}; neither is used` });
        continue;
      }
      // Specs come in priority order, so a later one with a higher priority replaces the earlier.
      if (!other || spec.priority > other.spec.priority) devices.set(name, offered);
    }
  }
  for (const name of conflicts) devices.delete(name);
  return { devices, problems: found, conflicts, dirs };
}

/** The devices of one kind, in the order their specs define them. */
export const devicesOfKind = (registry: DeviceRegistry, kind: string) => [...registry.devices.values()].filter((device) => kindOf(device) === kind);

/**
 * The devices `requests` name, each once, in request order. `kind=all` is the spec's own `all`
 * device when it defines one (nvidia-ctk does), else every device of the kind. A name no spec
 * defines fails the job, unless a broken spec on this node might have defined it: then the node is
 * at fault and its admin must hear of it.
 */
export function resolveDevices(registry: DeviceRegistry, requests: readonly QualifiedName[]): OfferedDevice[] {
  const out = new Map<string, OfferedDevice>();
  for (const request of requests) {
    const name = qualified(request);
    const kind = kindOf(request);
    const own = registry.devices.get(name);
    if (own) {
      out.set(name, own);
      continue;
    }
    if (registry.conflicts.has(name)) {
      const files = registry.problems.filter((problem) => problem.message.startsWith(`device ${name} `)).map((problem) => problem.path);
      throw nodeError('E_CDI_CONFLICT', `CDI device ${name} is defined by more than one spec (${[...new Set(files)].join(', ')})`, { hint: 'remove or rename one of them on this node; `strata doctor` lists the problems' });
    }
    const ofKind = devicesOfKind(registry, kind);
    if (request.name === ALL_DEVICES && ofKind.length) {
      for (const device of ofKind) out.set(qualified(device), device);
      continue;
    }
    if (registry.problems.length) {
      throw nodeError('E_CDI_SPEC', `CDI device ${name} was requested, and this node has CDI specs it cannot use: ${registry.problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`, {
        hint: 'fix or remove the broken spec files; `strata doctor` lists them',
      });
    }
    const where = registry.dirs.join(', ');
    if (ofKind.length) {
      const files = [...new Set(ofKind.map((device) => device.spec.path))].join(', ');
      throw userError('E_DEVICE_UNKNOWN', `device ${name} is not offered on this node: ${files} defines ${kind} devices ${ofKind.map((device) => device.name).join(', ')}`, { hint: 'ask for one of those' });
    }
    throw userError('E_DEVICE_UNKNOWN', `device ${name} is not offered on this node: no CDI spec in ${where || '(no spec directories)'} defines kind ${kind}`, {
      hint: 'check the device name, or ask for a node that has such devices',
    });
  }
  return [...out.values()];
}

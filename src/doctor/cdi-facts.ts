// What `strata doctor` needs to know about devices: the CDI devices this node offers and the spec
// files it cannot use (src/runtime/devices/), the GPU device nodes present, and whether Slurm
// confines jobs to their allocated devices (cgroup.conf ConstrainDevices). Only reads.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseSlurmConf } from '../scheduler/slurm-conf.js';
import type { Config } from '../config/types.js';
import { loadRegistry } from '../runtime/devices/index.js';
import { qualified } from '../runtime/devices/names.js';

export interface DeviceFacts {
  specDirs: string[];
  /** Usable devices, fully qualified, with the spec file defining each. */
  offered: { name: string; spec: string }[];
  /** Spec files that cannot be used (broken, untrusted, clashing), each with why. */
  problems: { path: string; message: string }[];
  /** GPU device nodes on the host (/dev/nvidia0, /dev/nvidia1, ...). */
  gpuNodes: string[];
  /** Slurm's cgroup.conf, when Slurm is configured on this node. */
  cgroup?: { path: string; readable: boolean; constrainDevices?: string };
}

export interface DeviceFactOptions {
  /** slurm.conf, when found: cgroup.conf sits next to it. */
  slurmConf?: string;
  /** Where to look for GPU device nodes (tests). */
  devDir?: string;
}

export function gatherDeviceFacts(config: Pick<Config, 'devices'>, options: DeviceFactOptions = {}): DeviceFacts {
  const registry = loadRegistry(config);
  const devDir = options.devDir ?? '/dev';
  let names: string[] = [];
  try {
    names = readdirSync(devDir);
  } catch {
    // No /dev to list: no GPUs seen.
  }
  const facts: DeviceFacts = {
    specDirs: [...config.devices.specDirs],
    offered: [...registry.devices.values()].map((device) => ({ name: qualified(device), spec: device.spec.path })),
    problems: registry.problems.map(({ path, message }) => ({ path, message })),
    gpuNodes: names.filter((name) => /^nvidia\d+$/.test(name)).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6))).map((name) => join(devDir, name)),
  };
  if (options.slurmConf) {
    const path = join(dirname(options.slurmConf), 'cgroup.conf');
    try {
      facts.cgroup = { path, readable: true, constrainDevices: parseSlurmConf(readFileSync(path, 'utf8')).get('constraindevices') };
    } catch {
      facts.cgroup = { path, readable: false };
    }
  }
  return facts;
}

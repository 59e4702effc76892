// What the host has at the paths CDI specs name: the only I/O the device edits depend on, gathered
// up front so that buildContainerEdits stays pure (and testable with hand-written facts). Host
// paths come from root-owned spec files, not from users; a symlink is followed, as a bind mount of it would be.

import { lstatSync, statSync } from 'node:fs';
import type { OfferedDevice } from './registry.js';

export type HostPathKind = 'char' | 'block' | 'fifo' | 'file' | 'dir' | 'other';

export interface HostPathInfo {
  kind: HostPathKind;
  /** For char and block devices. */
  major?: number;
  minor?: number;
}

/** Host path -> what is there; a path that is not in the map does not exist. */
export type HostFacts = ReadonlyMap<string, HostPathInfo>;

/** Linux dev_t split (glibc's gnu_dev_major/minor). */
export const devMajor = (rdev: number) => Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
export const devMinor = (rdev: number) => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));

/** Every host path the devices' edits (their own and their specs') name. */
export function hostPathsOf(devices: readonly OfferedDevice[]): string[] {
  const paths = new Set<string>();
  const editsOf = (device: OfferedDevice) => [device.device.containerEdits, device.spec.spec.containerEdits ?? {}];
  for (const edits of devices.flatMap(editsOf)) {
    for (const node of edits.deviceNodes ?? []) paths.add(node.hostPath ?? node.path);
    for (const mount of edits.mounts ?? []) paths.add(mount.hostPath);
  }
  return [...paths];
}

export function gatherHostFacts(paths: readonly string[]): HostFacts {
  const facts = new Map<string, HostPathInfo>();
  for (const path of paths) {
    try {
      let info = lstatSync(path);
      // A bind mount follows a symlink source (nvidia-ctk names /dev/char links on some systems).
      if (info.isSymbolicLink()) info = statSync(path);
      const kind: HostPathKind = info.isCharacterDevice() ? 'char' : info.isBlockDevice() ? 'block' : info.isFIFO() ? 'fifo' : info.isFile() ? 'file' : info.isDirectory() ? 'dir' : 'other';
      facts.set(path, kind === 'char' || kind === 'block' ? { kind, major: devMajor(info.rdev), minor: devMinor(info.rdev) } : { kind });
    } catch {
      // Missing (or a dangling link): absent from the map.
    }
  }
  return facts;
}

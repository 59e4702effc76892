// Which file backs a loop device. The kernel keeps the full path in sysfs (the ioctl name is
// truncated to 64 bytes), with " (deleted)" appended when the file was replaced.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';

export interface LoopDevice {
  name: string;
  backingFile: string;
  deleted: boolean;
  autoclear: boolean;
}

const readSys = (path: string) => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** `/sys/dev/block/MAJOR:MINOR`, the sysfs directory of block device number `dev` (a st_dev). */
function sysBlockDir(dev: number): string {
  // Linux's encoding of dev_t (glibc's gnu_dev_major/minor).
  const major = ((dev >>> 8) & 0xfff) | Math.floor(dev / 2 ** 32) & ~0xfff;
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  return `/sys/dev/block/${major}:${minor}`;
}

/**
 * The device name (loopN, sda1, ...) of block device number `dev` (a filesystem's st_dev), or
 * undefined when it is no block device (tmpfs, overlay: anonymous devices).
 */
export function blockDeviceName(dev: number): string | undefined {
  try {
    return basename(readlinkSync(sysBlockDir(dev)));
  } catch {
    return undefined;
  }
}

/**
 * The backing file of the loop device numbered `dev` (a layer mount's st_dev), in one read; undefined
 * when `dev` is no bound loop device.
 */
export function loopBackingFileOfDevice(dev: number): string | undefined {
  return readSys(`${sysBlockDir(dev)}/loop/backing_file`)?.replace(/ \(deleted\)$/, '');
}

/** Every bound loop device on this kernel. */
export function listLoopDevices(): LoopDevice[] {
  const devices: LoopDevice[] = [];
  for (const name of readdirSync('/sys/block').filter((entry) => /^loop\d+$/.test(entry))) {
    const backing = readSys(`/sys/block/${name}/loop/backing_file`);
    if (!backing) continue;
    devices.push({
      name: `/dev/${name}`,
      backingFile: backing.replace(/ \(deleted\)$/, ''),
      deleted: backing.endsWith(' (deleted)'),
      autoclear: readSys(`/sys/block/${name}/loop/autoclear`) === '1',
    });
  }
  return devices;
}

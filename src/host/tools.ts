// Absolute paths of every program strata runs. The Slurm prolog/epilog environment has no PATH,
// so nothing is ever looked up by name.

import { lfsOverride } from '../test-switches.js';

export const TOOLS = {
  mount: '/usr/bin/mount',
  umount: '/usr/bin/umount',
  losetup: '/usr/sbin/losetup',
  flock: '/usr/bin/flock',
  logger: '/usr/bin/logger',
  tar: '/usr/bin/tar',
  tar2sqfs: '/usr/bin/tar2sqfs',
  rdsquashfs: '/usr/bin/rdsquashfs',
  unsquashfs: '/usr/bin/unsquashfs',
  gzip: '/usr/bin/gzip',
  zstd: '/usr/bin/zstd',
  xz: '/usr/bin/xz',
  unshare: '/usr/bin/unshare',
  setpriv: '/usr/bin/setpriv',
  true: '/usr/bin/true',
  chroot: '/usr/sbin/chroot',
  getent: '/usr/bin/getent',
  sudo: '/usr/bin/sudo',
  squeue: '/usr/bin/squeue',
  sh: '/bin/sh',
  rm: '/usr/bin/rm',
  mv: '/usr/bin/mv',
  // sudo and the store writer's setpriv drop the tests' stand-in (test-switches.ts).
  lfs: lfsOverride() ?? '/usr/bin/lfs',
} as const;

export type Tool = keyof typeof TOOLS;

/** A PATH for children, since the scheduler gives us none. */
export const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

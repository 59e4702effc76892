// A real, tiny overlay mount, the way the prolog makes one: a size-capped tmpfs holding lower,
// upper, work and merged directories, overlay with `volatile`, then everything unmounted and
// removed. Used by `strata doctor`: reading /proc/filesystems says a driver exists, only a mount
// says the kernel (and any LSM policy) lets us use it.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { firstLine } from '../errors.js';
import { mountsUnder, readMountinfo } from './mountinfo.js';
import { runMount, unmount } from './mounts.js';

export interface OverlayProbe {
  /** An overlay mounted at all (without `volatile` if that was refused). */
  overlay: boolean;
  /** It mounted with `volatile`. */
  volatile: boolean;
  /** The kernel's (mount's) complaint when something was refused. */
  error?: string;
}

const PREFIX = '.doctor-';

/** Mount and unmount a probe overlay under `parent` (which must exist); leaves nothing behind. */
export async function probeOverlay(parent: string): Promise<OverlayProbe> {
  await removeStaleProbes(parent);
  const dir = mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
  try {
    const tmpfs = await runMount(['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'strata-doctor', dir]);
    if (tmpfs.exitCode !== 0) return { overlay: false, volatile: false, error: `tmpfs: ${firstLine(tmpfs.stderr)}` };
    for (const name of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, name));
    const options = (volatile: boolean) => `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w${volatile ? ',volatile' : ''}`;
    const withVolatile = await runMount(['-t', 'overlay', '-o', options(true), 'overlay', join(dir, 'm')]);
    if (withVolatile.exitCode === 0) return { overlay: true, volatile: true };
    await unmount(join(dir, 'm'));
    // Start over in a fresh work dir: a failed mount may leave it unusable.
    rmSync(join(dir, 'w'), { recursive: true, force: true });
    mkdirSync(join(dir, 'w'));
    const plain = await runMount(['-t', 'overlay', '-o', options(false), 'overlay', join(dir, 'm')]);
    return { overlay: plain.exitCode === 0, volatile: false, error: firstLine(withVolatile.stderr) || firstLine(plain.stderr) };
  } finally {
    await removeProbe(dir);
  }
}

/** Probes left by a doctor that was killed half-way (e.g. SIGKILL at a health-check timeout). */
async function removeStaleProbes(parent: string) {
  for (const name of readdirSync(parent)) {
    const pid = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid && !existsSync(`/proc/${pid}`)) await removeProbe(join(parent, name));
  }
}

async function removeProbe(dir: string) {
  for (const entry of mountsUnder(readMountinfo(), dir)) await unmount(entry.mountPoint, { lazyFallback: true });
  // Nothing is mounted below any more: the directory tree is our own, on our own (gone) tmpfs.
  if (mountsUnder(readMountinfo(), dir).length === 0) rmSync(dir, { recursive: true, force: true });
}

// A real, tiny overlay mount, the way the prolog makes one: a size-capped tmpfs holding lower,
// upper, work and merged directories, overlay with `volatile`, then everything unmounted and
// removed. Used by `strata doctor`: reading /proc/filesystems says a driver exists, only a mount
// says the kernel (and any LSM policy) lets us use it.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { firstLine } from '../errors.js';
import { mountsUnder, readMountinfo } from './mountinfo.js';
import { mount, unmount, type MountArgs } from './mounts.js';

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
    const tmpfs = await attempt({ type: 'tmpfs', source: 'strata-doctor', target: dir, options: ['size=1m', 'mode=0700'] });
    if (tmpfs) return { overlay: false, volatile: false, error: `tmpfs: ${tmpfs}` };
    for (const name of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, name));
    const overlay = (volatile: boolean) =>
      attempt({ type: 'overlay', source: 'overlay', target: join(dir, 'm'), options: [`lowerdir=${dir}/l`, `upperdir=${dir}/u`, `workdir=${dir}/w`, ...(volatile ? ['volatile'] : [])] });
    const withVolatile = await overlay(true);
    if (!withVolatile) return { overlay: true, volatile: true };
    await unmount(join(dir, 'm'));
    // Start over in a fresh work dir: a failed mount may leave it unusable.
    rmSync(join(dir, 'w'), { recursive: true, force: true });
    mkdirSync(join(dir, 'w'));
    const plain = await overlay(false);
    return { overlay: !plain, volatile: false, error: withVolatile };
  } finally {
    await removeProbe(dir);
  }
}

/** Mount; the failure's one-line reason, or undefined when it mounted. */
async function attempt(args: MountArgs): Promise<string | undefined> {
  try {
    await mount(args);
    return undefined;
  } catch (error) {
    return firstLine(error instanceof Error ? error.message : String(error)).replace(/^\S*mount failed: /, '');
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

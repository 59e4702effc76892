// `strata doctor`'s verdicts on the kernel's support for the layer formats: squashfs (`import.compression`
// zstd, lz4hc, lz4, gzip, xz, and every `--container-save` file) and erofs (`none`, the default).
// Which one a node must have follows the site's configured format: a node that cannot mount the
// format `strata import` writes by default cannot start most of the site's images.

import { fail, ok, warn, type Check } from './check.js';
import type { Facts } from './facts.js';
import { versionBefore } from './versions.js';

export function checkSquashfs({ kernel }: Facts): Check {
  if (kernel.filesystems.includes('squashfs')) return ok('kernel.squashfs', 'squashfs loaded');
  if (kernel.modules.includes('squashfs')) return ok('kernel.squashfs', 'squashfs module available (loaded on first mount)');
  return fail('kernel.squashfs', 'the kernel has no squashfs', 'run `modprobe squashfs`, or use a kernel built with CONFIG_SQUASHFS and CONFIG_SQUASHFS_ZSTD');
}

/**
 * erofs is the format of images imported with import.compression: none. With `none` configured
 * (the default) a node without it cannot start images imported with the site's default: a failure.
 * With a squashfs compression configured only images imported with `--compression none` need it: a
 * warning.
 */
/** Linux 6.12 first mounts erofs from a regular file (EROFS_FS_BACKED_BY_FILE). */
const FILE_BACKED_EROFS = [6, 12];

export function checkErofs({ kernel, config }: Facts): Check {
  const siteDefault = config.effective.import.compression === 'none';
  const used = siteDefault ? 'the configured layer format (import.compression: none)' : 'images imported with --compression none';
  const viaLoop = versionBefore(kernel.release, FILE_BACKED_EROFS) ? `; Linux ${kernel.release} likely mounts it through a loop device per layer (file-backed erofs is 6.12+)` : '';
  if (kernel.filesystems.includes('erofs')) return ok('kernel.erofs', `erofs loaded (for ${used}${viaLoop})`);
  if (kernel.modules.includes('erofs')) return ok('kernel.erofs', `erofs module available (loaded on first mount; for ${used}${viaLoop})`);
  const fix = 'run `modprobe erofs`, or use a kernel built with CONFIG_EROFS_FS (and CONFIG_EROFS_FS_BACKED_BY_FILE, Linux 6.12+, to need no loop device)';
  if (siteDefault) {
    return fail('kernel.erofs', 'the kernel has no erofs: images imported with this site\'s import.compression (none, uncompressed erofs) cannot start on this node', `${fix}; or set import.compression: zstd for the site and import its images again`);
  }
  return warn('kernel.erofs', 'the kernel has no erofs: images imported with --compression none cannot start on this node', fix);
}

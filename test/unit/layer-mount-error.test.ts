// What a layer that did not mount means for the job and the node (src/runtime/layers/stack.ts):
// a kernel without erofs fails the jobs of erofs images only, with what to do; a layer file the
// kernel refuses is the image's fault; a store that cannot be read is the node's.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layerMountError, siteLayerFormatError } from '../../src/runtime/layers/stack.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-layer-error-'));
  writeFileSync(join(dir, 'layer.erofs'), Buffer.alloc(8192));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const layer = (erofs: boolean) => ({ file: join(dir, 'layer.erofs'), digest: 'sha256:abc', ...(erofs ? { erofs: true as const } : {}) });

test('a kernel without erofs, for an image imported as erofs: the job fails with the fix, the node is not drained', () => {
  for (const stderr of ['mount: No such device (ENODEV)', "mount: unknown filesystem type 'erofs'."]) {
    const error = layerMountError(layer(true), stderr);
    expect(error).toMatchObject({ kind: 'user', code: 'E_NO_EROFS' });
    expect(error.message).toMatch(/cannot mount erofs layers, and layer sha256:abc of this image is one/);
    expect(error.hint).toMatch(/modprobe erofs.*--compression zstd/);
  }
});

test('a kernel without erofs on a site whose imports write erofs (the default) is the node\'s fault: drained with the fix, job requeued', () => {
  const error = layerMountError(layer(true), 'mount: No such device (ENODEV)');
  const onDefaultSite = siteLayerFormatError(error, 'none');
  expect(onDefaultSite).toMatchObject({ kind: 'node', code: 'E_NO_EROFS' });
  expect((onDefaultSite as Error).message).toMatch(/cannot mount erofs, the layer format this site's imports write \(import.compression: none\)/);
  expect((onDefaultSite as { hint: string }).hint).toMatch(/modprobe erofs.*resume the node/);
  // A site writing squashfs: an erofs image is one user's choice, and only its jobs fail.
  expect(siteLayerFormatError(error, 'zstd')).toBe(error);
  // Any other error passes through unchanged.
  const broken = layerMountError(layer(false), 'mount: Invalid argument (EINVAL)');
  expect(siteLayerFormatError(broken, 'none')).toBe(broken);
});

test('a squashfs layer the kernel refuses is a damaged image, whatever the errno', () => {
  expect(layerMountError(layer(false), 'mount: No such device (ENODEV)')).toMatchObject({ kind: 'user', code: 'E_IMAGE_BROKEN' });
  expect(layerMountError(layer(true), 'mount: Invalid argument (EINVAL)')).toMatchObject({ kind: 'user', code: 'E_IMAGE_BROKEN' });
});

test('a layer file that cannot be read is the node failing (store I/O), not the image', () => {
  expect(() => layerMountError({ file: join(dir, 'gone.erofs'), digest: 'sha256:abc' }, 'mount: Invalid argument (EINVAL)')).toThrow(expect.objectContaining({ kind: 'node', code: 'E_STORE_IO' }));
});

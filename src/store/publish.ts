// Publishing into the store: write `*.partial`, fsync, verify the digest, then move into place.
// Content-addressed files are never replaced once present (a node may have the old inode loop-
// mounted), so the final step is link(2), which fails if the name exists, not rename(2).

import { createHash } from 'node:crypto';
import { newPartialPath } from './partials.js';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, open, rename, unlink, utimes } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errnoCode, nodeError } from '../errors.js';
import { StoreLayout, type LayerFormat } from './layout.js';

export const sha256Of = (bytes: Uint8Array | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export async function sha256OfFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export { newPartialPath } from './partials.js';

async function fsyncPath(path: string) {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Move a finished, fsynced partial file to `finalPath` unless a file is already there. */
async function placeImmutable(partial: string, finalPath: string): Promise<void> {
  await mkdir(dirname(finalPath), { recursive: true, mode: 0o755 });
  try {
    await link(partial, finalPath);
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
    // Same digest, same content: someone published it first. Mark it used now, so that gc's
    // grace period protects it until whatever we publish next refers to it.
    const now = new Date();
    await utimes(finalPath, now, now).catch(() => undefined);
  } finally {
    await unlink(partial).catch(() => undefined);
  }
  await fsyncPath(dirname(finalPath)).catch(() => undefined);
}

/** Publish a JSON document (manifest or config) as a blob; returns its digest. */
export async function publishBlob(layout: StoreLayout, bytes: Buffer): Promise<string> {
  const digest = sha256Of(bytes);
  const partial = await newPartialPath(layout, 'blob');
  const handle = await open(partial, 'wx', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await placeImmutable(partial, layout.blobPath(digest));
  return digest;
}

/** Publish a built layer file: hash it, make it read-only, move it to its content address. */
export async function publishLayerFile(layout: StoreLayout, partial: string, format: LayerFormat): Promise<{ digest: string; size: number }> {
  await fsyncPath(partial);
  const { digest, size } = await sha256OfFile(partial);
  await chmod(partial, 0o444);
  await placeImmutable(partial, layout.layerPath(digest, format));
  return { digest, size };
}

/** Point a small mutable name (a tag, a diff-id index entry) at a digest, atomically. */
export async function writePointer(layout: StoreLayout, path: string, digest: string): Promise<void> {
  const partial = await newPartialPath(layout, basename(path).replace(/[^\w.-]/g, '_'));
  const handle = await open(partial, 'wx', 0o644);
  try {
    await handle.writeFile(`${digest}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  try {
    await rename(partial, path);
  } catch (error) {
    await unlink(partial).catch(() => undefined);
    throw nodeError('E_STORE_WRITE', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

// Layer files in the store, found and added by the key they are indexed under in `diffids/`: the
// diff_id of the layer tar, or for a flattened image a digest of its diff_id list. A layer whose
// key is already there is reused without reading its source (and touched, so gc leaves it).
// Each layer format has its own index: a layer imported as squashfs is not reused for an import
// that asked for erofs, nor the other way round.

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { errnoCode } from '../../errors.js';
import { stripeNewFile } from '../../host/lustre.js';
import { newPartialPath, publishLayerFile, writePointer } from '../publish.js';
import type { Store } from '../store.js';
import type { LayerFormat } from '../layout.js';
import { touch } from '../tags.js';

/** The key a layer of `format` is indexed under (squashfs: the key itself, as before erofs existed). */
const indexKey = (key: string, format: LayerFormat) =>
  format === 'squashfs' ? key : `sha256:${createHash('sha256').update(`strata ${format} v1\n${key}`).digest('hex')}`;

/** The store's layer of `format` for a key, if it has one (pointer and layer file both present). */
export async function storedLayerFor(store: Store, key: string, format: LayerFormat): Promise<{ digest: string; size: number } | undefined> {
  let digest: string;
  try {
    digest = (await readFile(store.layout.diffIdPath(indexKey(key, format)), 'utf8')).trim();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const path = store.layout.layerPath(digest, format);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  // Reused from now on: a concurrent gc must not take it before our manifest refers to it.
  await touch(path);
  return { digest, size: info.size };
}

/** The key of a flattened layer: a digest of the diff_ids it was merged from. */
export const flattenedKey = (diffIds: string[]) => `sha256:${createHash('sha256').update(`strata flatten v1\n${diffIds.join('\n')}`).digest('hex')}`;

/**
 * A new layer file: `build` writes it at the partial path it is given and returns the key to
 * index it under (it removes the partial itself if it throws); then it is published by content
 * and the key pointed at it. `stripeCount`: `lfs setstripe -c` first (0: leave the default).
 */
export async function publishNewLayer(store: Store, partialName: string, stripeCount: number, format: LayerFormat, build: (partial: string) => Promise<string>): Promise<{ digest: string; size: number; key: string }> {
  const partial = await newPartialPath(store.layout, partialName);
  await stripeNewFile(partial, stripeCount);
  const key = await build(partial);
  const published = await publishLayerFile(store.layout, partial, format);
  await writePointer(store.layout, store.layout.diffIdPath(indexKey(key, format)), published.digest);
  return { ...published, key };
}

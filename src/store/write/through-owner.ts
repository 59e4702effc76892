// The caller's side of a store write that the store's owner does (route.ts decided it): start the
// owner's writer (host/store-writer.ts), hand it the request, and stream it the layers, read here
// with the caller's own permissions and credentials.

import type { Compression } from '../../config/types.js';
import { userError } from '../../errors.js';
import { startStoreWriter, strataExecutable, writerCommand } from '../../host/store-writer.js';
import type { ImageSource, SourceImage } from '../sources/types.js';
import { relayWrite, type LayerBytes } from './relay/caller.js';
import type { WriteRequest } from './relay/writer.js';
import type { WriteRoute } from './route.js';

export type RelayRoute = Extract<WriteRoute, { how: 'relay' }>;

/** Hands `request` to the store owner's writer; resolves with the digest it published, if any. */
export async function writeThroughOwner(route: RelayRoute, request: WriteRequest, layerBytes?: LayerBytes): Promise<{ status: number; ready: boolean; digest?: string }> {
  const writer = startStoreWriter(route.launch);
  const outcome = await relayWrite(writer, request, layerBytes);
  if (!outcome.ready && outcome.status !== 0 && route.launch.how === 'sudo') {
    throw userError('E_STORE_DENIED', `sudo did not run strata's store writer as ${route.owner.name}, so user imports cannot work here`, {
      hint: `ask your admin to install the sudoers rule from docs/install.md: ALL ALL=(${route.owner.name}) NOPASSWD: ${strataExecutable()} _store-write`,
      detail: writerCommand(route.launch).join(' '),
    });
  }
  return outcome;
}

/**
 * Hands a resolved image to the store owner's writer; the layers are read here, as this user.
 * `layerBytes` may wrap the source's streams (progress).
 */
export async function relaySourceImage(
  route: RelayRoute,
  source: ImageSource,
  image: SourceImage,
  fields: { sourceText: string; tag?: string; flatten?: boolean; compression?: Compression },
  layerBytes: LayerBytes = (index) => image.layers[index].open(),
) {
  const request: WriteRequest = {
    op: 'import',
    sourceText: fields.sourceText,
    description: source.description,
    tag: fields.tag,
    flatten: fields.flatten,
    compression: fields.compression,
    image: {
      manifestDigest: image.manifestDigest,
      config: image.configBytes.toString('base64'),
      configDigest: image.configDigest,
      layers: image.layers.map(({ digest, mediaType, size }) => ({ digest, mediaType, size })),
      suggestedTag: image.suggestedTag,
    },
  };
  return writeThroughOwner(route, request, layerBytes);
}

// `strata import docker://... | oci:... | oci-archive:... | docker-archive:...`: a whole image from
// an image source into the store. Per layer: already in the store (by diff_id) → reused, nothing
// downloaded; else the blob streams, verified, through the whiteout converter into tar2sqfs, and
// the layer file is published only when the blob digest and the diff_id both match. Then the
// config (verbatim), the manifest and the tag. Layers run in parallel, bounded by config.

import { rm } from 'node:fs/promises';
import type { Compression } from '../../config/types.js';
import { userError } from '../../errors.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE, type Manifest } from '../image.js';
import { createStoreRoot } from './store-root.js';
import { LAYER_MEDIA_TYPES, layerFormatFor } from '../layout.js';
import { uncompressedLayer } from './decompress.js';
import { buildLayerFile } from './layer-file.js';
import { flattenLayers } from './flatten.js';
import { sweepPartials } from '../partials.js';
import { mapLimit } from './pool.js';
import { publishBlob } from '../publish.js';
import { flattenedKey, publishNewLayer, storedLayerFor } from './stored-layer.js';
import { parseTagRef } from '../ref.js';
import { setTag } from '../tags.js';
import { configDiffIds } from '../sources/manifest.js';
import type { ImageSource, SourceLayer } from '../sources/types.js';
import { digestMismatch, verifyStream } from '../sources/verify.js';
import { Store } from '../store.js';

export interface ImportProgress {
  /** The image is resolved: how many layers, how many bytes to fetch at most (when known). */
  resolved?(info: { layers: number; bytes?: number }): void;
  /** Blob bytes read from the source. */
  bytes?(n: number): void;
  /** One layer is in the store (`reused`: it was already there, and its `size` bytes will not be read). */
  layerDone?(info: { index: number; reused: boolean; size?: number }): void;
}

export interface SourceImageRequest {
  /** As the user typed it (recorded in the manifest). */
  sourceText: string;
  /** NAME:TAG; defaults to what the source suggests. */
  tag?: string;
  /** Where the tag goes (a user's import: their own namespace); default: as named. */
  placeTag?: (text: string) => { name: string; tag: string };
  compression: Compression;
  parallelLayers: number;
  /** `lfs setstripe -c` for new layer files (0: leave the default). */
  lustreStripeCount?: number;
  /** One squashfs for the whole image. */
  flatten?: boolean;
  /** Flatten automatically above this many layers (0: never). */
  flattenAbove?: number;
  progress?: ImportProgress;
}

export interface SourceImageResult {
  digest: string;
  tag: string;
  layers: number;
  reusedLayers: number;
  /** The image was stored as one layer. */
  flattened: boolean;
  bytesRead: number;
  durationMs: number;
}

interface StoredLayer {
  digest: string;
  size: number;
  reused: boolean;
}

interface LayerBuildOptions {
  compression: Compression;
  onBytes: (n: number) => void;
  stripeCount: number;
}

export async function importSourceImage(store: Store, source: ImageSource, request: SourceImageRequest): Promise<SourceImageResult> {
  const started = performance.now();
  const place = request.placeTag ?? ((text: string) => parseTagRef(text));
  if (request.tag) place(request.tag); // a bad --tag fails before any download
  try {
    const image = await source.resolve();
    const tagText = request.tag ?? image.suggestedTag;
    if (!tagText) throw userError('E_BAD_REF', `${source.description} names no tag for the store`, { hint: 'give one with --tag NAME:TAG' });
    const target = place(tagText);
    const diffIds = configDiffIds(image.configBytes, image.layers.length, source.description);
    const knownBytes = image.layers.every((l) => l.size !== undefined) ? image.layers.reduce((sum, l) => sum + (l.size ?? 0), 0) : undefined;
    request.progress?.resolved?.({ layers: image.layers.length, bytes: knownBytes });

    await createStoreRoot(store.layout.root);
    await sweepPartials(store.layout);

    let bytesRead = 0;
    let reusedLayers = 0;
    const onBytes = (n: number) => {
      bytesRead += n;
      request.progress?.bytes?.(n);
    };
    // One build per distinct diff_id (images repeat empty layers).
    const buildOptions: LayerBuildOptions = { compression: request.compression, onBytes, stripeCount: request.lustreStripeCount ?? 0 };
    const builds = new Map<string, Promise<StoredLayer>>();
    const layerFor = (layer: SourceLayer, diffId: string, index: number) => {
      let build = builds.get(diffId);
      if (!build) {
        build = storeLayer(store, layer, diffId, index, source.description, buildOptions);
        builds.set(diffId, build);
      }
      return build;
    };
    const flattened = request.flatten === true || (request.flattenAbove !== undefined && request.flattenAbove > 0 && image.layers.length > request.flattenAbove);
    const stored = flattened
      ? [await storeFlattened(store, image.layers, diffIds, source.description, buildOptions)]
      : await mapLimit(image.layers, request.parallelLayers, async (layer, index) => {
          const result = await layerFor(layer, diffIds[index], index);
          if (result.reused) reusedLayers++;
          request.progress?.layerDone?.({ index, reused: result.reused, size: layer.size });
          return result;
        });
    if (flattened) {
      if (stored[0].reused) reusedLayers = 1;
      image.layers.forEach((layer, index) => request.progress?.layerDone?.({ index, reused: stored[0].reused, size: layer.size }));
    }

    const configDigest = await publishBlob(store.layout, image.configBytes);
    if (configDigest !== image.configDigest) throw digestMismatch(`config of ${source.description}`, image.configDigest, configDigest);
    const created = new Date().toISOString();
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MANIFEST_MEDIA_TYPE,
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: configDigest, size: image.configBytes.length },
      layers: stored.map((layer, index) => ({
        mediaType: LAYER_MEDIA_TYPES[layerFormatFor(request.compression)],
        digest: layer.digest,
        size: layer.size,
        annotations: (flattened ? { [FLATTENED_ANNOTATION]: diffIds.join(',') } : { [DIFF_ID_ANNOTATION]: diffIds[index] }) as Record<string, string>,
      })),
      annotations: {
        'org.strata.source': request.sourceText,
        ...(image.manifestDigest ? { 'org.strata.source.manifest': image.manifestDigest } : {}),
        'org.opencontainers.image.created': created,
      },
    };
    const digest = await publishBlob(store.layout, Buffer.from(JSON.stringify(manifest)));
    await setTag(store.layout, target.name, target.tag, digest);
    return { digest, tag: `${target.name}:${target.tag}`, layers: stored.length, reusedLayers, flattened, bytesRead, durationMs: performance.now() - started };
  } finally {
    await source.close();
  }
}

/** The diff_ids a flattened layer was merged from, in manifest order, comma-separated. */
export const FLATTENED_ANNOTATION = 'org.strata.flattened_from';

/** One layer from all of them (flatten.ts), keyed in diffids/ by a digest of the diff_id list. */
async function storeFlattened(store: Store, layers: SourceLayer[], diffIds: string[], sourceWhat: string, options: LayerBuildOptions): Promise<StoredLayer> {
  const key = flattenedKey(diffIds);
  const format = layerFormatFor(options.compression);
  const existing = await storedLayerFor(store, key, format);
  if (existing) return { ...existing, reused: true };
  const what = `the flattened layers of ${sourceWhat}`;
  const merged = async () =>
    flattenLayers(
      layers.map((layer, index) => {
        const layerWhat = `layer ${index + 1} (${layer.digest ?? diffIds[index]}) of ${sourceWhat}`;
        return { diffId: diffIds[index], what: layerWhat, open: async () => uncompressedLayer(verifyStream(await layer.open(), layer.digest, layerWhat, { size: layer.size, onBytes: options.onBytes }), layerWhat) };
      }),
    );
  const published = await publishNewLayer(store, 'flat', options.stripeCount, format, async (partial) => {
    await buildLayerFile({ source: { kind: 'stream', what, open: merged }, outputPath: partial, compression: options.compression });
    return key;
  });
  return { digest: published.digest, size: published.size, reused: false };
}

/** One layer of the image: reused by diff_id, else built from the verified blob and checked against its diff_id. */
async function storeLayer(store: Store, layer: SourceLayer, diffId: string, index: number, sourceWhat: string, options: LayerBuildOptions): Promise<StoredLayer> {
  const format = layerFormatFor(options.compression);
  const existing = await storedLayerFor(store, diffId, format);
  if (existing) return { ...existing, reused: true };
  const what = `layer ${index + 1} (${layer.digest ?? diffId}) of ${sourceWhat}`;
  const published = await publishNewLayer(store, 'layer', options.stripeCount, format, async (partial) => {
    const built = await buildLayerFile({
      source: { kind: 'stream', what, open: async () => verifyStream(await layer.open(), layer.digest, what, { size: layer.size, onBytes: options.onBytes }) },
      outputPath: partial,
      compression: options.compression,
    });
    if (built.diffId !== diffId) {
      await rm(partial, { force: true });
      throw digestMismatch(`uncompressed ${what}`, diffId, built.diffId);
    }
    return diffId;
  });
  return { digest: published.digest, size: published.size, reused: false };
}

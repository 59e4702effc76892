// `strata import docker://... | oci:... | oci-archive:... | docker-archive:...`: a whole image from
// an image source into the store. Per layer: already in the store (by diff_id) → reused, nothing
// downloaded; else the blob streams, verified, through the whiteout converter into tar2sqfs, and
// the layer file is published only when the blob digest and the diff_id both match. Then the
// config (verbatim), the manifest and the tag. Layers run in parallel, bounded by config.

import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import type { Compression } from '../../config/types.js';
import { errnoCode, userError } from '../../errors.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE, type Manifest } from '../image.js';
import { createStoreRoot } from './layer-image.js';
import { LAYER_MEDIA_TYPES } from '../layout.js';
import { stripeNewFile } from '../../host/lustre.js';
import { uncompressedLayer } from './decompress.js';
import { buildSquashfsLayer } from './squashfs.js';
import { flattenLayers } from './flatten.js';
import { sweepPartials } from '../partials.js';
import { mapLimit } from './pool.js';
import { newPartialPath, publishBlob, publishLayerFile, writePointer } from '../publish.js';
import { parseTagRef } from '../ref.js';
import { setTag, touch } from '../tags.js';
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

export interface SourceImportRequest {
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

export interface SourceImportResult {
  digest: string;
  tag: string;
  layers: number;
  reusedLayers: number;
  /** The image was stored as one layer. */
  flattened: boolean;
  bytesRead: number;
  durationMs: number;
}

export async function importFromSource(store: Store, source: ImageSource, request: SourceImportRequest): Promise<SourceImportResult> {
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
    const builds = new Map<string, Promise<{ digest: string; size: number; reused: boolean }>>();
    const layerFor = (layer: SourceLayer, diffId: string, index: number) => {
      let build = builds.get(diffId);
      if (!build) {
        build = storeLayer(store, layer, diffId, index, source.description, request.compression, onBytes, request.lustreStripeCount ?? 0);
        builds.set(diffId, build);
      }
      return build;
    };
    const flattened = request.flatten === true || (request.flattenAbove !== undefined && request.flattenAbove > 0 && image.layers.length > request.flattenAbove);
    const stored = flattened
      ? [await storeFlattened(store, image.layers, diffIds, source.description, request.compression, onBytes, request.lustreStripeCount ?? 0)]
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
        mediaType: LAYER_MEDIA_TYPES.squashfs,
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

/** The store's layer for a diff_id, if it has one (pointer and layer file both present). */
export async function storedLayerFor(store: Store, diffId: string): Promise<{ digest: string; size: number } | undefined> {
  let digest: string;
  try {
    digest = (await readFile(store.layout.diffIdPath(diffId), 'utf8')).trim();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const path = store.layout.layerPath(digest);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  // Reused from now on: a concurrent gc must not take it before our manifest refers to it.
  await touch(path);
  return { digest, size: info.size };
}

/** The diff_ids a flattened layer was merged from, in manifest order, comma-separated. */
export const FLATTENED_ANNOTATION = 'org.strata.flattened_from';

/** One layer from all of them (flatten.ts), keyed in diffids/ by a digest of the diff_id list. */
async function storeFlattened(
  store: Store,
  layers: SourceLayer[],
  diffIds: string[],
  sourceWhat: string,
  compression: Compression,
  onBytes: (n: number) => void,
  stripeCount: number,
): Promise<{ digest: string; size: number; reused: boolean }> {
  const key = `sha256:${createHash('sha256').update(`strata flatten v1\n${diffIds.join('\n')}`).digest('hex')}`;
  const existing = await storedLayerFor(store, key);
  if (existing) return { ...existing, reused: true };
  const what = `the flattened layers of ${sourceWhat}`;
  const partial = await newPartialPath(store.layout, 'flat');
  await stripeNewFile(partial, stripeCount);
  await buildSquashfsLayer({
    source: {
      kind: 'stream',
      what,
      open: async () =>
        flattenLayers(
          layers.map((layer, index) => {
            const layerWhat = `layer ${index + 1} (${layer.digest ?? diffIds[index]}) of ${sourceWhat}`;
            return { diffId: diffIds[index], what: layerWhat, open: async () => uncompressedLayer(verifyStream(await layer.open(), layer.digest, layerWhat, { size: layer.size, onBytes }), layerWhat) };
          }),
        ),
    },
    outputPath: partial,
    compression,
  });
  const published = await publishLayerFile(store.layout, partial, 'squashfs');
  await writePointer(store.layout, store.layout.diffIdPath(key), published.digest);
  return { ...published, reused: false };
}

async function storeLayer(
  store: Store,
  layer: SourceLayer,
  diffId: string,
  index: number,
  sourceWhat: string,
  compression: Compression,
  onBytes: (n: number) => void,
  stripeCount: number,
): Promise<{ digest: string; size: number; reused: boolean }> {
  const existing = await storedLayerFor(store, diffId);
  if (existing) return { ...existing, reused: true };
  const what = `layer ${index + 1} (${layer.digest ?? diffId}) of ${sourceWhat}`;
  const partial = await newPartialPath(store.layout, 'layer');
  await stripeNewFile(partial, stripeCount);
  const built = await buildSquashfsLayer({
    source: { kind: 'stream', what, open: async () => verifyStream(await layer.open(), layer.digest, what, { size: layer.size, onBytes }) },
    outputPath: partial,
    compression,
  });
  if (built.diffId !== diffId) {
    await rm(partial, { force: true });
    throw digestMismatch(`uncompressed ${what}`, diffId, built.diffId);
  }
  const published = await publishLayerFile(store.layout, partial, 'squashfs');
  await writePointer(store.layout, store.layout.diffIdPath(diffId), published.digest);
  return { ...published, reused: false };
}

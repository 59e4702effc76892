// `strata import dir:PATH | tar:PATH --tag NAME:TAG [--base NAME:TAG]`: build one layer file,
// publish it, and publish a manifest whose layers are the base's plus the new one.

import type { Compression } from '../../config/types.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE, emptyImageConfig, type ImageConfig, type Manifest } from '../image.js';
import { LAYER_MEDIA_TYPES, layerFormatFor } from '../layout.js';
import { buildLayerFile } from './layer-file.js';
import { localLayerSource, type LayerSource } from './layer-source.js';
import { publishBlob } from '../publish.js';
import { createStoreRoot } from './store-root.js';
import { publishNewLayer } from './stored-layer.js';
import { parseTagRef } from '../ref.js';
import { setTag } from '../tags.js';
import { Store } from '../store.js';

export interface LayerImageRequest {
  /** `dir:PATH` or `tar:PATH`, as the user typed it (recorded in the image). */
  source: string;
  /** The layer's bytes when another process read the source (user imports); else `source` is read here. */
  layer?: LayerSource;
  tag: string;
  base?: string;
  compression: Compression;
}

export interface LayerImageResult {
  digest: string;
  layerDigest: string;
  layerSize: number;
  layers: number;
  durationMs: number;
}

export async function importLayerImage(store: Store, request: LayerImageRequest): Promise<LayerImageResult> {
  const started = performance.now();
  const target = parseTagRef(request.tag);
  const source = request.layer ?? (await localLayerSource(request.source));

  // Everything about the base is read before any work, so a wrong --base fails fast.
  const base = request.base ? await store.open(request.base) : undefined;
  await createStoreRoot(store.layout.root);

  const format = layerFormatFor(request.compression);
  const layer = await publishNewLayer(store, 'layer', 0, format, async (partial) => (await buildLayerFile({ source, outputPath: partial, compression: request.compression })).diffId);
  const diffId = layer.key;

  const config: ImageConfig = base ? structuredClone(base.config) : emptyImageConfig();
  const created = new Date().toISOString();
  config.created = created;
  config.rootfs = { type: 'layers', diff_ids: [...(base?.config.rootfs?.diff_ids ?? []), diffId] };
  config.history = [...(config.history ?? []), { created, created_by: `strata import ${request.source}` }];
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await publishBlob(store.layout, configBytes);

  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: { mediaType: CONFIG_MEDIA_TYPE, digest: configDigest, size: configBytes.length },
    layers: [
      ...(base?.manifest.layers ?? []),
      { mediaType: LAYER_MEDIA_TYPES[format], digest: layer.digest, size: layer.size, annotations: { [DIFF_ID_ANNOTATION]: diffId } },
    ],
    annotations: { 'org.strata.source': request.source, 'org.opencontainers.image.created': created },
  };
  const digest = await publishBlob(store.layout, Buffer.from(JSON.stringify(manifest)));
  await setTag(store.layout, target.name, target.tag, digest);
  return { digest, layerDigest: layer.digest, layerSize: layer.size, layers: manifest.layers.length, durationMs: performance.now() - started };
}

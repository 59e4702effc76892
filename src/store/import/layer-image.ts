// `strata import dir:PATH | tar:PATH --tag NAME:TAG [--base NAME:TAG]`: build one squashfs layer,
// publish it, and publish a manifest whose layers are the base's plus the new one.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Compression } from '../../config/types.js';
import { errnoCode, nodeError } from '../../errors.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE, emptyImageConfig, type ImageConfig, type Manifest } from '../image.js';
import { LAYER_MEDIA_TYPES } from '../layout.js';
import { buildSquashfsLayer } from './squashfs.js';
import { localLayerSource, type LayerSource } from './layer-source.js';
import { newPartialPath, publishBlob, publishLayerFile, writePointer } from '../publish.js';
import { parseTagRef } from '../ref.js';
import { setTag } from '../tags.js';
import { Store } from '../store.js';

export interface ImportRequest {
  /** `dir:PATH` or `tar:PATH`, as the user typed it (recorded in the image). */
  source: string;
  /** The layer's bytes when another process read the source (user imports); else `source` is read here. */
  layer?: LayerSource;
  tag: string;
  base?: string;
  compression: Compression;
}

export interface ImportResult {
  digest: string;
  layerDigest: string;
  layerSize: number;
  layers: number;
  durationMs: number;
}

export async function importImage(store: Store, request: ImportRequest): Promise<ImportResult> {
  const started = performance.now();
  const target = parseTagRef(request.tag);
  const source = request.layer ?? (await localLayerSource(request.source));

  // Everything about the base is read before any work, so a wrong --base fails fast.
  const base = request.base ? await store.open(request.base) : undefined;
  await createStoreRoot(store.layout.root);

  const partial = await newPartialPath(store.layout, 'layer');
  const { diffId } = await buildSquashfsLayer({ source, outputPath: partial, compression: request.compression });
  const layer = await publishLayerFile(store.layout, partial, 'squashfs');
  await writePointer(store.layout, store.layout.diffIdPath(diffId), layer.digest);

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
      { mediaType: LAYER_MEDIA_TYPES.squashfs, digest: layer.digest, size: layer.size, annotations: { [DIFF_ID_ANNOTATION]: diffId } },
    ],
    annotations: { 'org.strata.source': request.source, 'org.opencontainers.image.created': created },
  };
  const digest = await publishBlob(store.layout, Buffer.from(JSON.stringify(manifest)));
  await setTag(store.layout, target.name, target.tag, digest);
  return { digest, layerDigest: layer.digest, layerSize: layer.size, layers: manifest.layers.length, durationMs: performance.now() - started };
}

/**
 * The first import creates the store directory, but only inside an existing parent: if the shared
 * filesystem is not mounted, a store quietly created on the local disk would hide the problem.
 */
export async function createStoreRoot(root: string): Promise<void> {
  try {
    await mkdir(root, { mode: 0o755 });
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return;
    throw nodeError('E_STORE_UNREACHABLE', `cannot create the image store ${root}: ${(error as Error).message}`, {
      hint: errnoCode(error) === 'ENOENT' ? `create ${dirname(root)} first (is the shared filesystem mounted?) or set store.path in strata.yaml` : 'check permissions on the store path',
    });
  }
}

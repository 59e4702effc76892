// `strata import dir:PATH | tar:PATH --tag NAME:TAG [--base NAME:TAG]`: build one squashfs layer,
// publish it, and publish a manifest whose layers are the base's plus the new one.

import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { resolve as resolvePath } from 'node:path';
import type { Compression } from '../../config/types.js';
import { errnoCode, nodeError, userError } from '../../errors.js';
import { CONFIG_MEDIA_TYPE, DIFF_ID_ANNOTATION, MANIFEST_MEDIA_TYPE, emptyImageConfig, type ImageConfig, type Manifest } from '../image.js';
import { LAYER_MEDIA_TYPES } from '../layout.js';
import { buildSquashfsLayer, type LayerSource } from './squashfs.js';
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

export function parseImportSource(text: string): { kind: 'dir' | 'tar'; path: string } {
  const match = /^(dir|tar):(.+)$/.exec(text);
  if (!match) {
    throw userError('E_BAD_SOURCE', `unsupported import source "${text}"`, {
      hint: 'use docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE, dir:PATH (a root filesystem tree) or tar:PATH (a layer tar)',
    });
  }
  return { kind: match[1] as 'dir' | 'tar', path: resolvePath(match[2]) };
}

/** The `dir:`/`tar:` source `text` names, checked as the calling process sees it. */
export async function localLayerSource(text: string): Promise<{ kind: 'dir' | 'tar'; path: string }> {
  const source = parseImportSource(text);
  const sourceStat = await stat(source.path).catch(() => undefined);
  if (!sourceStat) throw userError('E_BAD_SOURCE', `import source ${source.path} does not exist`, { hint: 'check the path' });
  if (source.kind === 'dir' && !sourceStat.isDirectory()) {
    throw userError('E_BAD_SOURCE', `${source.path} is not a directory`, { hint: 'use tar:PATH for a tar file' });
  }
  return source;
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

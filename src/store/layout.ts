// Where things live in the store (on the shared filesystem). The layout is the whole state:
//
//   <store>/layers/sha256/<hex>.sqfs   one read-only squashfs per layer, named by its own sha256
//   <store>/layers/sha256/<hex>.erofs  or an uncompressed erofs (import.compression: none)
//   <store>/blobs/sha256/<hex>         manifests and image configs (JSON), named by their sha256
//   <store>/tags/<name>/@<tag>         "sha256:<manifest hex>\n" — a name may contain '/'
//   <store>/diffids/sha256/<hex>       "sha256:<layer hex>\n" — uncompressed-tar digest → layer (dedupe)
//   <store>/tmp/*.partial              being written; removed by the next import or gc
//
// Everything but tags and diffids is immutable once published. Nodes only ever read.

import { join } from 'node:path';
import type { Compression } from '../config/types.js';

export const LAYER_MEDIA_TYPES = {
  squashfs: 'application/vnd.strata.layer.v1.squashfs',
  erofs: 'application/vnd.strata.layer.v1.erofs',
} as const;
export type LayerFormat = keyof typeof LAYER_MEDIA_TYPES;
const LAYER_EXTENSIONS: Record<LayerFormat, string> = { squashfs: 'sqfs', erofs: 'erofs' };
/** The endings of layer file names, one per format. */
export const LAYER_SUFFIXES = Object.values(LAYER_EXTENSIONS).map((extension) => `.${extension}`);

/** A store file's name without the first of `suffixes` it ends with: the hex digest, if it is well named. */
export const nameWithoutSuffix = (name: string, suffixes: readonly string[]): string => {
  const suffix = suffixes.find((candidate) => candidate !== '' && name.endsWith(candidate)) ?? '';
  return name.slice(0, name.length - suffix.length);
};

/** The layer format `strata import` writes: squashfs compressed as asked, or uncompressed erofs. */
export const layerFormatFor = (compression: Compression): LayerFormat => (compression === 'none' ? 'erofs' : 'squashfs');

export const hexOf = (digest: string) => digest.replace(/^sha256:/, '');

export function layerFormatOf(mediaType: string): LayerFormat | undefined {
  return (Object.keys(LAYER_MEDIA_TYPES) as LayerFormat[]).find((format) => LAYER_MEDIA_TYPES[format] === mediaType);
}

export class StoreLayout {
  constructor(readonly root: string) {}

  layerPath(digest: string, format: LayerFormat = 'squashfs') {
    return join(this.root, 'layers', 'sha256', `${hexOf(digest)}.${LAYER_EXTENSIONS[format]}`);
  }
  blobPath(digest: string) {
    return join(this.root, 'blobs', 'sha256', hexOf(digest));
  }
  tagPath(name: string, tag: string) {
    return join(this.root, 'tags', ...name.split('/'), `@${tag}`);
  }
  get tagsDir() {
    return join(this.root, 'tags');
  }
  diffIdPath(diffId: string) {
    return join(this.root, 'diffids', 'sha256', hexOf(diffId));
  }
  get tmpDir() {
    return join(this.root, 'tmp');
  }
}

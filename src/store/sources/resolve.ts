// From a top-level manifest or index to one image: pick the platform in an index (nested indexes
// too), read and verify the manifest and the config. Shared by every manifest-based source
// (registries, OCI layouts); each supplies how to fetch a document or a blob.

import { userError } from '../../errors.js';
import { choosePlatform, configDiffIds, formatPlatform, parseManifest, type BlobRef, type ParsedManifest } from './manifest.js';
import type { Platform, SourceImage, SourceLayer } from './types.js';
import { verifyBytes } from './verify.js';

export interface Document {
  bytes: Buffer;
  /** What the transport says it is (Content-Type, the descriptor). */
  mediaType?: string;
}

export interface BlobFetcher {
  /** For messages: "docker://host/repo", "oci:/dir". */
  readonly what: string;
  /** A manifest or index by digest (not yet verified). */
  manifest(ref: BlobRef): Promise<Document>;
  /** A small blob (config) by digest (not yet verified). */
  blob(ref: BlobRef): Promise<Buffer>;
  /** A layer blob's raw bytes. */
  stream(ref: BlobRef): Promise<AsyncIterable<Uint8Array>>;
}

const MAX_INDEX_DEPTH = 4;

/**
 * Resolves `top` (already verified when it was asked for by digest) to one image. The index
 * choice uses `platform`; a plain manifest is taken whatever its platform (its config says).
 */
export async function resolveFromManifest(fetcher: BlobFetcher, top: Document & { digest: string }, platform: Platform): Promise<SourceImage> {
  let current = top;
  let parsed = parseManifest(current.bytes, current.mediaType, `manifest of ${fetcher.what}`);
  for (let depth = 0; parsed.kind === 'index'; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw userError('E_BAD_MANIFEST', `${fetcher.what}: indexes nest too deeply`, { hint: 'the image is damaged' });
    const entry = choosePlatform(parsed, platform, fetcher.what);
    const document = await fetcher.manifest(entry);
    verifyBytes(document.bytes, entry.digest, `manifest ${entry.digest} (${formatPlatform(platform)}) of ${fetcher.what}`);
    current = { ...document, mediaType: document.mediaType || entry.mediaType, digest: entry.digest };
    parsed = parseManifest(current.bytes, current.mediaType, `manifest ${entry.digest} of ${fetcher.what}`);
  }
  const manifest: ParsedManifest = parsed;
  const configBytes = verifyBytes(await fetcher.blob(manifest.config), manifest.config.digest, `config ${manifest.config.digest} of ${fetcher.what}`);
  configDiffIds(configBytes, manifest.layers.length, fetcher.what);
  const layers: SourceLayer[] = manifest.layers.map((layer) => ({
    digest: layer.digest,
    mediaType: layer.mediaType,
    size: layer.size,
    open: () => fetcher.stream(layer),
  }));
  return { manifestDigest: current.digest, configBytes, configDigest: manifest.config.digest, layers };
}

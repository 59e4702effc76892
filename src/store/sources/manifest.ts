// OCI and Docker v2 schema2 manifests, indexes and manifest lists: media types, parsing, and the
// choice of one platform from an index. Pure.

import { userError } from '../../errors.js';
import type { Platform } from './types.js';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a registry client asks for: every manifest kind strata reads, image manifests first. */
export const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.ociIndex, MEDIA.dockerList].join(', ');

const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
]);

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export interface BlobRef {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ParsedManifest {
  kind: 'manifest';
  config: BlobRef;
  layers: BlobRef[];
}

export interface IndexEntry extends BlobRef {
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ParsedIndex {
  kind: 'index';
  manifests: IndexEntry[];
}

const bad = (what: string, why: string) =>
  userError('E_BAD_MANIFEST', `${what}: ${why}`, { hint: 'the image is damaged or in a format strata does not read (OCI or Docker v2 schema2)' });

function blobRef(value: unknown, what: string, field: string): BlobRef {
  const v = value as Partial<BlobRef> | null;
  if (!v || typeof v !== 'object') throw bad(what, `${field} is missing`);
  if (typeof v.digest !== 'string' || !DIGEST_RE.test(v.digest)) {
    throw bad(what, `${field} has ${typeof v.digest === 'string' ? `an unsupported digest "${v.digest}" (strata reads sha256)` : 'no digest'}`);
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw bad(what, `${field} has no valid size`);
  return { mediaType: typeof v.mediaType === 'string' ? v.mediaType : '', digest: v.digest, size: v.size };
}

/**
 * Parses a manifest or an index. `mediaType` is what the transport said (Content-Type, an index
 * descriptor); the document's own `mediaType` field wins when present.
 */
export function parseManifest(bytes: Buffer, mediaType: string | undefined, what: string): ParsedManifest | ParsedIndex {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw bad(what, 'it is not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad(what, 'it is not a JSON object');
  const type = (typeof doc.mediaType === 'string' && doc.mediaType) || (mediaType ?? '').split(';')[0].trim();
  if (type === MEDIA.dockerSchema1 || type === MEDIA.dockerSchema1Signed || doc.schemaVersion === 1) {
    throw userError('E_BAD_MANIFEST', `${what} is a Docker schema 1 manifest, which strata does not read`, {
      hint: 'push the image again with a current docker or skopeo (schema 2 / OCI)',
    });
  }
  if (doc.schemaVersion !== 2) throw bad(what, `schemaVersion is ${JSON.stringify(doc.schemaVersion)}, not 2`);
  const isIndex = type === MEDIA.ociIndex || type === MEDIA.dockerList || (!type && Array.isArray(doc.manifests) && !doc.layers);
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw bad(what, 'an index without a manifests list');
    return {
      kind: 'index',
      manifests: doc.manifests.map((entry, i) => {
        const ref = blobRef(entry, what, `manifests[${i}]`);
        const { platform, annotations } = entry as { platform?: Partial<Platform>; annotations?: unknown };
        return {
          ...ref,
          ...(annotations && typeof annotations === 'object' && !Array.isArray(annotations) ? { annotations: annotations as Record<string, string> } : {}),
          platform:
            platform && typeof platform.os === 'string' && typeof platform.architecture === 'string'
              ? { os: platform.os, architecture: platform.architecture, ...(typeof platform.variant === 'string' && platform.variant ? { variant: platform.variant } : {}) }
              : undefined,
        };
      }),
    };
  }
  if (type && type !== MEDIA.ociManifest && type !== MEDIA.dockerManifest) throw bad(what, `unsupported media type ${type}`);
  if (!Array.isArray(doc.layers)) throw bad(what, 'no layers list');
  const config = blobRef(doc.config, what, 'config');
  const layers = doc.layers.map((layer, i) => blobRef(layer, what, `layers[${i}]`));
  for (const [i, layer] of layers.entries()) {
    if (layer.mediaType && !LAYER_TYPES.has(layer.mediaType)) throw bad(what, `layers[${i}] has media type ${layer.mediaType}, which is not an image layer`);
  }
  return { kind: 'manifest', config, layers };
}

/** This machine's platform in OCI terms (Node's `process.arch` → GOARCH names). */
export function hostPlatform(arch: string = process.arch): Platform {
  const map: Record<string, Platform> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
    ia32: { os: 'linux', architecture: '386' },
  };
  return map[arch] ?? { os: 'linux', architecture: arch };
}

/** `linux/amd64`, `linux/arm64/v8`, `arm64` (os defaults to linux). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.length === 1 && parts[0]) return { os: 'linux', architecture: parts[0] };
  if ((parts.length === 2 || parts.length === 3) && parts.every(Boolean)) {
    return { os: parts[0], architecture: parts[1], ...(parts[2] ? { variant: parts[2] } : {}) };
  }
  throw userError('E_BAD_PLATFORM', `invalid platform "${text}"`, { hint: 'use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8' });
}

export const formatPlatform = (p: Platform) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;

/** arm64 without a variant means v8, as containerd's platform matcher treats it. */
const normalVariant = (p: Platform) => (p.architecture === 'arm64' && !p.variant ? 'v8' : p.variant);

/**
 * The index entry for `wanted`: same os and architecture; a variant, when asked for, must match
 * (arm64 defaults to v8). Entries without a platform (attestations) never match. Errors list
 * what the index offers.
 */
export function choosePlatform(index: ParsedIndex, wanted: Platform, what: string): IndexEntry {
  const candidates = index.manifests.filter(
    (entry) => entry.platform && entry.platform.os === wanted.os && entry.platform.architecture === wanted.architecture && entry.platform.os !== 'unknown',
  );
  const wantedVariant = normalVariant(wanted);
  const exact = candidates.find((entry) => normalVariant(entry.platform!) === wantedVariant);
  const chosen = exact ?? (wanted.variant ? undefined : candidates[0]);
  if (!chosen) {
    const offered = index.manifests.filter((e) => e.platform && e.platform.os !== 'unknown').map((e) => formatPlatform(e.platform!));
    throw userError('E_NO_PLATFORM', `${what} has no image for ${formatPlatform(wanted)}${offered.length ? ` (it has ${offered.join(', ')})` : ''}`, {
      hint: 'pick one of those with --platform, or use an image built for this platform',
    });
  }
  return chosen;
}

/** The `rootfs.diff_ids` of an image config, checked against the number of layers. */
export function configDiffIds(configBytes: Buffer, layerCount: number, what: string): string[] {
  let config: { rootfs?: { diff_ids?: unknown } };
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw bad(`config of ${what}`, 'it is not valid JSON');
  }
  const ids = config?.rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && DIGEST_RE.test(id))) {
    throw bad(`config of ${what}`, 'rootfs.diff_ids is missing or holds an unsupported digest');
  }
  if (ids.length !== layerCount) throw bad(what, `the manifest has ${layerCount} layers but the config lists ${ids.length} diff_ids`);
  return ids as string[];
}

// Test images as OCI layouts, built here from scratch: layer tars as Python's tarfile writes them
// (every entry type, PAX xattrs, whiteouts; built in-process by test/helpers/tar-build.ts),
// compressed with gzip, zstd or not at all, then blobs, configs, manifests and an index.json, as
// image-spec image-layout.md describes. Other formats come from these through skopeo
// (docker-archive:, registries), as a site would get them.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { XATTR_PREFIX } from '../../src/tar/pax.js';
import { buildTar } from './tar-build.js';

export interface TarSpec {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  content?: string;
  /** Repeat `content` this many times (large files). */
  repeat?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
  /** Copy a host file's bytes (busybox). */
  fromFile?: string;
}

/** A layer tar from entry specs, as Python's tarfile writes one (PAX format unless asked), built in-process. */
export function layerTar(entries: TarSpec[], format: 'pax' | 'gnu' = 'pax'): Buffer {
  return buildTar(
    entries.map((entry) => ({
      name: entry.name,
      type: entry.type,
      data: entry.fromFile ? readFileSync(entry.fromFile) : (entry.content ?? '').repeat(entry.repeat ?? 1),
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: 1700000000,
      linkname: entry.linkname,
      devmajor: entry.devmajor,
      devminor: entry.devminor,
      pax: entry.xattrs && Object.keys(entry.xattrs).length > 0 ? Object.fromEntries(Object.entries(entry.xattrs).map(([key, value]) => [`${XATTR_PREFIX}${key}`, value])) : undefined,
    })),
    { format },
  );
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export const sha256 = (bytes: Uint8Array | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

const LAYER_TYPES: Record<LayerCompression, string> = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

export function compress(tar: Buffer, compression: LayerCompression): Buffer {
  if (compression === 'gzip') return gzipSync(tar);
  if (compression === 'zstd') return execFileSync('/usr/bin/zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 1 << 30 });
  return tar;
}

export interface ImageSpec {
  /** `org.opencontainers.image.ref.name` in index.json. */
  ref?: string;
  layers: { tar: Buffer; compression: LayerCompression }[];
  config?: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string; Labels?: Record<string, string> };
  architecture?: string;
  variant?: string;
}

export interface BuiltImage {
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  diffIds: string[];
}

function writeBlob(layout: string, bytes: Buffer): { digest: string; size: number } {
  const digest = sha256(bytes);
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  writeFileSync(join(layout, 'blobs/sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** Writes one image's blobs into `layout`; returns its manifest descriptor pieces. */
export function writeImage(layout: string, spec: ImageSpec): BuiltImage & { manifestSize: number } {
  const layers = spec.layers.map(({ tar, compression }) => ({ ...writeBlob(layout, compress(tar, compression)), mediaType: LAYER_TYPES[compression], diffId: sha256(tar) }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: spec.architecture ?? 'amd64',
      ...(spec.variant ? { variant: spec.variant } : {}),
      os: 'linux',
      config: spec.config ?? {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    }),
  );
  const configBlob = writeBlob(layout, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  const manifestBlob = writeBlob(layout, manifest);
  return { manifestDigest: manifestBlob.digest, manifestSize: manifestBlob.size, configDigest: configBlob.digest, layerDigests: layers.map((l) => l.digest), diffIds: layers.map((l) => l.diffId) };
}

/** An OCI layout with one index entry per image (tagged by `ref`), plus optional multi-arch indexes. */
export function writeLayout(layout: string, images: ImageSpec[], multiArch: { ref: string; images: ImageSpec[] }[] = []): BuiltImage[] {
  mkdirSync(layout, { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const entries: unknown[] = [];
  const built: BuiltImage[] = [];
  for (const spec of images) {
    const image = writeImage(layout, spec);
    built.push(image);
    entries.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: image.manifestDigest,
      size: image.manifestSize,
      ...(spec.ref ? { annotations: { 'org.opencontainers.image.ref.name': spec.ref } } : {}),
    });
  }
  for (const group of multiArch) {
    const manifests = group.images.map((spec) => {
      const image = writeImage(layout, spec);
      built.push(image);
      return {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: image.manifestDigest,
        size: image.manifestSize,
        platform: { os: 'linux', architecture: spec.architecture ?? 'amd64', ...(spec.variant ? { variant: spec.variant } : {}) },
      };
    });
    const index = writeBlob(layout, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })));
    entries.push({ mediaType: 'application/vnd.oci.image.index.v1+json', ...index, annotations: { 'org.opencontainers.image.ref.name': group.ref } });
  }
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: entries }));
  return built;
}

/** The busybox base every test image starts from: /bin/busybox, applet links, the usual dirs. */
export function busyboxLayer(extra: TarSpec[] = []): Buffer {
  const dirs = ['bin', 'etc', 'proc', 'sys', 'dev', 'root', 'tmp', 'var'].map((name): TarSpec => ({ name, type: 'dir', mode: name === 'tmp' ? 0o1777 : name === 'root' ? 0o700 : 0o755 }));
  return layerTar([
    { name: './', type: 'dir', mode: 0o755 },
    ...dirs,
    { name: 'bin/busybox', fromFile: '/bin/busybox', mode: 0o755 },
    ...['sh', 'ls', 'cat', 'echo', 'id'].map((applet): TarSpec => ({ name: `bin/${applet}`, type: 'symlink', linkname: 'busybox' })),
    ...extra,
  ]);
}

/** A small runnable image (busybox, then a layer with /etc/marker holding `marker`), referenced as `marker`: what the import-on-first-use tests pull. */
export const markerImage = (marker: string): ImageSpec => ({
  ref: marker,
  architecture: 'amd64',
  layers: [
    { compression: 'gzip', tar: busyboxLayer() },
    { compression: 'gzip', tar: busyboxLayer([{ name: 'etc/marker', content: `${marker}\n` }]) },
  ],
});

const LONG = `long/${'d'.repeat(60)}/${'n'.repeat(120)}.txt`;
/**
 * The image every import test checks against umoci: three layers (gzip, zstd, uncompressed GNU
 * tar) with a deletion, an opaque directory, a whiteout in a directory only its layer has, hard
 * links, symlinks, devices, a fifo, setuid/setgid bits, an xattr, long names, a 3 MB file, and a
 * config with Env, Entrypoint, Cmd, WorkingDir and Labels.
 */
export const richImage = (ref: string): ImageSpec => ({
  ref,
  layers: [
    {
      compression: 'gzip',
      tar: busyboxLayer([
        { name: 'data', type: 'dir' },
        { name: 'data/old.txt', content: 'old\n' },
        { name: 'data/keep.txt', content: 'keep\n', xattrs: { 'user.origin': 'layer1' } },
        { name: 'data/hardlink', type: 'hardlink', linkname: 'data/keep.txt' },
        { name: 'data/sym', type: 'symlink', linkname: 'keep.txt' },
        { name: 'data/dangling', type: 'symlink', linkname: '/nowhere/at/all' },
        { name: 'opq', type: 'dir' },
        { name: 'opq/a', content: 'a\n' },
        { name: 'opq/b', content: 'b\n' },
        { name: 'devs', type: 'dir' },
        { name: 'devs/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
        { name: 'devs/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660 },
        { name: 'devs/fifo', type: 'fifo', mode: 0o600 },
        { name: 'bin/setuid-tool', content: '#!/bin/sh\n', mode: 0o4755 },
        { name: 'bin/setgid-dir', type: 'dir', mode: 0o2775 },
        { name: 'etc/hello', content: 'hello from layer 1\n' },
        { name: LONG, content: 'long name\n' },
        { name: 'big.bin', content: '0123456789abcdef', repeat: 200_000 },
      ]),
    },
    {
      compression: 'zstd',
      tar: layerTar([
        { name: 'data/.wh.old.txt' },
        { name: 'opq', type: 'dir' },
        { name: 'opq/.wh..wh..opq' },
        { name: 'opq/new', content: 'new\n' },
        { name: 'fresh', type: 'dir', mode: 0o750, uid: 1234, gid: 5678 },
        { name: 'fresh/.wh.ghost' },
        { name: 'fresh/owned', content: 'mine\n', uid: 1234, gid: 5678, mode: 0o640 },
      ]),
    },
    {
      compression: 'none',
      tar: layerTar(
        [
          { name: 'etc/hello', content: 'hello from layer 3\n' },
          { name: 'etc/top-marker', content: 'top\n' },
          { name: `gnu/${'g'.repeat(150)}`, content: 'gnu long name\n' },
          { name: `gnu/link-${'l'.repeat(120)}`, type: 'symlink', linkname: `${'t'.repeat(130)}` },
        ],
        'gnu',
      ),
    },
  ],
  config: { Env: ['PATH=/bin', 'FOO=bar'], Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], WorkingDir: '/data', Labels: { suite: 'strata' } },
});

/** The same layer tars with gzip instead of zstd (same diff_ids), for tools that do not read zstd (umoci 0.4, docker-archive). */
export const gzipOnly = (image: ImageSpec, ref: string): ImageSpec => ({
  ...image,
  ref,
  layers: image.layers.map((layer) => ({ ...layer, compression: layer.compression === 'zstd' ? 'gzip' : layer.compression })),
});

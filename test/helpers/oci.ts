// Test images as OCI layouts, built here from scratch: layer tars written by Python's tarfile
// (every entry type, PAX xattrs, whiteouts), compressed with gzip, zstd or not at all, then
// blobs, configs, manifests and an index.json, as image-spec image-layout.md describes. Other
// formats come from these through skopeo (docker-archive:, registries), as a site would get them.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

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

/** A layer tar (PAX format) from entry specs, via Python's tarfile. */
export function layerTar(entries: TarSpec[], format: 'pax' | 'gnu' = 'pax'): Buffer {
  const script = `
import tarfile, io, sys, json
spec = json.loads(sys.stdin.read())
out = io.BytesIO()
fmt = tarfile.PAX_FORMAT if spec['format'] == 'pax' else tarfile.GNU_FORMAT
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE,
         'char': tarfile.CHRTYPE, 'block': tarfile.BLKTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(fileobj=out, mode='w', format=fmt) as t:
    for e in spec['entries']:
        ti = tarfile.TarInfo(e['name'])
        ti.type = types[e.get('type', 'file')]
        ti.mode = e.get('mode', 0o755 if ti.type == tarfile.DIRTYPE else 0o644)
        ti.uid = e.get('uid', 0); ti.gid = e.get('gid', 0); ti.mtime = 1700000000
        ti.linkname = e.get('linkname', '')
        ti.devmajor = e.get('devmajor', 0); ti.devminor = e.get('devminor', 0)
        if e.get('xattrs'):
            ti.pax_headers = {'SCHILY.xattr.' + k: v for k, v in e['xattrs'].items()}
        data = None
        if ti.type == tarfile.REGTYPE:
            if e.get('fromFile'):
                data = open(e['fromFile'], 'rb').read()
            else:
                data = (e.get('content', '') * e.get('repeat', 1)).encode()
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
sys.stdout.buffer.write(out.getvalue())
`;
  return execFileSync('python3', ['-c', script], { input: JSON.stringify({ entries, format }), maxBuffer: 1 << 30 });
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

export const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

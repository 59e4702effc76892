// Manifests, indexes and platform choice (OCI and Docker v2 schema2).

import { choosePlatform, configDiffIds, hostPlatform, parseManifest, parsePlatform, type ParsedIndex } from '../../src/store/sources/manifest.js';
import { expectUserError } from '../helpers/errors.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));

test('an OCI manifest and a Docker schema2 manifest', () => {
  const layers = [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: d('b'), size: 10 }];
  const oci = parseManifest(json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: d('a'), size: 2 }, layers }), undefined, 'm');
  expect(oci).toEqual({ kind: 'manifest', config: { mediaType: 'x', digest: d('a'), size: 2 }, layers });
  // Docker's manifest often has no mediaType in the body: the Content-Type says it.
  const docker = parseManifest(
    json({ schemaVersion: 2, config: { digest: d('a'), size: 2 }, layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('c'), size: 3 }] }),
    'application/vnd.docker.distribution.manifest.v2+json; charset=utf-8',
    'm',
  );
  expect(docker.kind).toBe('manifest');
});

test('an index and a Docker manifest list', () => {
  const manifests = [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('1'), size: 5, platform: { os: 'linux', architecture: 'amd64' }, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }];
  expect(parseManifest(json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }), undefined, 'i')).toEqual({ kind: 'index', manifests });
  expect(parseManifest(json({ schemaVersion: 2, manifests }), 'application/vnd.docker.distribution.manifest.list.v2+json', 'i').kind).toBe('index');
});

test.each([
  ['not JSON', Buffer.from('{'), /is not valid JSON/],
  ['schema 1', json({ schemaVersion: 1, fsLayers: [] }), /Docker schema 1 manifest/],
  ['no layers', json({ schemaVersion: 2, config: { digest: d('a'), size: 1 } }), /no layers list/],
  ['sha512', json({ schemaVersion: 2, config: { digest: `sha512:${'a'.repeat(128)}`, size: 1 }, layers: [] }), /unsupported digest/],
  ['not a layer', json({ schemaVersion: 2, config: { digest: d('a'), size: 1 }, layers: [{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: d('b'), size: 1 }] }), /not an image layer/],
])('rejects %s', (_what, bytes, message) => {
  expect(expectUserError(() => parseManifest(bytes, undefined, 'manifest of x'), 'E_BAD_MANIFEST').message).toMatch(message);
});

const index = (platforms: (Record<string, string> | undefined)[]): ParsedIndex => ({
  kind: 'index',
  manifests: platforms.map((platform, i) => ({ mediaType: '', digest: d(String(i)), size: 1, platform: platform as never })),
});

test('platform choice: os/arch, variants, attestations skipped, a clear error listing what exists', () => {
  const i = index([{ os: 'unknown', architecture: 'unknown' }, { os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, undefined]);
  expect(choosePlatform(i, parsePlatform('linux/amd64'), 'x').digest).toBe(d('3'));
  expect(choosePlatform(i, parsePlatform('linux/arm/v7'), 'x').digest).toBe(d('2'));
  expect(choosePlatform(i, parsePlatform('linux/arm64'), 'x').digest).toBe(d('4'));
  expect(choosePlatform(i, parsePlatform('arm'), 'x').digest).toBe(d('1'));
  const error = expectUserError(() => choosePlatform(i, parsePlatform('linux/ppc64le'), 'docker://r/x:1'), 'E_NO_PLATFORM');
  expect(error.message).toBe('docker://r/x:1 has no image for linux/ppc64le (it has linux/arm/v6, linux/arm/v7, linux/amd64, linux/arm64/v8)');
});

test('this machine in OCI terms; --platform syntax', () => {
  expect(hostPlatform('x64')).toEqual({ os: 'linux', architecture: 'amd64' });
  expect(hostPlatform('arm64')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  expectUserError(() => parsePlatform('linux//'), 'E_BAD_PLATFORM');
});

test('diff_ids must match the layer count', () => {
  const config = json({ rootfs: { type: 'layers', diff_ids: [d('1'), d('2')] } });
  expect(configDiffIds(config, 2, 'x')).toEqual([d('1'), d('2')]);
  expect(expectUserError(() => configDiffIds(config, 3, 'x'), 'E_BAD_MANIFEST').message).toBe('x: the manifest has 3 layers but the config lists 2 diff_ids');
  expectUserError(() => configDiffIds(json({}), 0, 'x'), 'E_BAD_MANIFEST');
});

// docker:// references resolved as docker resolves them, and the source names strata accepts.

import { defaultStoreTag, parseRegistryRef, usesPlainHttp } from '../../src/registry/reference.js';
import { parseImageSource } from '../../src/store/sources/open.js';
import { expectUserError } from '../helpers/errors.js';

const D = `sha256:${'a'.repeat(64)}`;

test.each([
  ['ubuntu', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/ubuntu', tag: 'latest' }],
  ['ubuntu:22.04', { registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04' }],
  ['nvidia/cuda:12.4.1-base', { registry: 'docker.io', repository: 'nvidia/cuda', tag: '12.4.1-base' }],
  ['docker.io/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
  ['index.docker.io/library/alpine:3', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/alpine', tag: '3' }],
  ['nvcr.io/nvidia/pytorch:24.05-py3', { registry: 'nvcr.io', apiHost: 'nvcr.io', repository: 'nvidia/pytorch', tag: '24.05-py3' }],
  ['localhost/x', { registry: 'localhost', repository: 'x', tag: 'latest' }],
  ['127.0.0.1:5000/team/img:1', { registry: '127.0.0.1:5000', apiHost: '127.0.0.1:5000', repository: 'team/img', tag: '1' }],
  [`ghcr.io/o/r@${D}`, { registry: 'ghcr.io', repository: 'o/r', tag: undefined, digest: D }],
  [`quay.io/o/r:v1@${D}`, { repository: 'o/r', tag: 'v1', digest: D }],
  ['//ubuntu', { repository: 'library/ubuntu' }],
])('%s', (text, expected) => {
  expect(parseRegistryRef(text)).toMatchObject(expected);
});

test.each([
  ['', 'it is empty'],
  ['Ubuntu', 'is not a valid repository name'],
  ['ubuntu:bad tag', 'is not a valid tag'],
  ['ubuntu@sha256:abc', 'is not a sha256 digest'],
  ['host.io/', 'is not a valid repository name'],
])('rejects %j', (text, why) => {
  expect(expectUserError(() => parseRegistryRef(text), 'E_BAD_REF').message).toContain(why);
});

test('default store tags drop the Docker Hub host and library/', () => {
  expect(defaultStoreTag(parseRegistryRef('ubuntu:22.04'))).toBe('ubuntu:22.04');
  expect(defaultStoreTag(parseRegistryRef('nvidia/cuda'))).toBe('nvidia/cuda:latest');
  expect(defaultStoreTag(parseRegistryRef('nvcr.io/nvidia/pytorch:24.05-py3'))).toBe('nvcr.io/nvidia/pytorch:24.05-py3');
});

test('plain HTTP only with --insecure or on this machine', () => {
  expect(usesPlainHttp(parseRegistryRef('nvcr.io/a/b'), false)).toBe(false);
  expect(usesPlainHttp(parseRegistryRef('nvcr.io/a/b'), true)).toBe(true);
  expect(usesPlainHttp(parseRegistryRef('localhost:5000/a'), false)).toBe(true);
  expect(usesPlainHttp(parseRegistryRef('127.0.0.1:5000/a'), false)).toBe(true);
});

test('source names: the path ends at the first colon, the rest is the reference', () => {
  expect(parseImageSource('docker://ubuntu:22.04')).toEqual({ kind: 'docker', location: 'ubuntu:22.04' });
  expect(parseImageSource('oci:/srv/layout:v1')).toEqual({ kind: 'oci', location: '/srv/layout', ref: 'v1' });
  expect(parseImageSource('oci:/srv/layout')).toEqual({ kind: 'oci', location: '/srv/layout', ref: undefined });
  expect(parseImageSource('oci-archive:/tmp/a.tar:latest')).toEqual({ kind: 'oci-archive', location: '/tmp/a.tar', ref: 'latest' });
  expect(parseImageSource('docker-archive:/tmp/d.tar:ubuntu:22.04')).toEqual({ kind: 'docker-archive', location: '/tmp/d.tar', ref: 'ubuntu:22.04' });
  expect(parseImageSource('dir:/x')).toBeUndefined();
  expectUserError(() => parseImageSource('oci:'), 'E_BAD_SOURCE');
});

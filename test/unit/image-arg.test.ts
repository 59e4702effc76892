// Image arguments as Pyxis users write them (the forms of enroot's docker::_parse_uri and of
// Pyxis's tests/docker_image.bats and invalid_args.bats), next to strata's own store names.

import { parseImageArgument } from '../../src/registry/image-arg.js';
import { expectUserError } from '../helpers/errors.js';

const D = `sha256:${'b'.repeat(64)}`;

describe('registry images, enroot and docker spellings', () => {
  test.each([
    // [argument, registry, repository, tag, digest, login, store name]
    ['ubuntu:24.04', 'docker.io', 'library/ubuntu', '24.04', undefined, undefined, 'ubuntu:24.04'],
    ['ubuntu', 'docker.io', 'library/ubuntu', 'latest', undefined, undefined, 'ubuntu:latest'],
    ['docker.io/ubuntu:24.04', 'docker.io', 'library/ubuntu', '24.04', undefined, undefined, 'ubuntu:24.04'],
    ['docker.io#ubuntu:24.04', 'docker.io', 'library/ubuntu', '24.04', undefined, undefined, 'ubuntu:24.04'],
    ['nvcr.io#nvidia/pytorch:24.05-py3', 'nvcr.io', 'nvidia/pytorch', '24.05-py3', undefined, undefined, 'nvcr.io/nvidia/pytorch:24.05-py3'],
    ['nvcr.io/nvidia/pytorch:24.05-py3', 'nvcr.io', 'nvidia/pytorch', '24.05-py3', undefined, undefined, 'nvcr.io/nvidia/pytorch:24.05-py3'],
    ['docker://nvcr.io#nvidia/pytorch:24.05-py3', 'nvcr.io', 'nvidia/pytorch', '24.05-py3', undefined, undefined, 'nvcr.io/nvidia/pytorch:24.05-py3'],
    ['gcr.io#deeplearning-platform-release/tf-cpu.2-9', 'gcr.io', 'deeplearning-platform-release/tf-cpu.2-9', 'latest', undefined, undefined, 'gcr.io/deeplearning-platform-release/tf-cpu.2-9:latest'],
    ['nvidia/cuda:12.4.1-base', 'docker.io', 'nvidia/cuda', '12.4.1-base', undefined, undefined, 'nvidia/cuda:12.4.1-base'],
    // enroot: the host before '#' needs no '.'; a host with a port
    ['myregistry#team/app:1', 'myregistry', 'team/app', '1', undefined, undefined, 'myregistry/team/app:1'],
    ['127.0.0.1:5000#team/app:1', '127.0.0.1:5000', 'team/app', '1', undefined, undefined, '127.0.0.1:5000/team/app:1'],
    ['docker://127.0.0.1:5000/team/app', '127.0.0.1:5000', 'team/app', 'latest', undefined, undefined, '127.0.0.1:5000/team/app:latest'],
    // USER@ picks the login; it may contain '@'
    ['$oauthtoken@nvcr.io#nvidia/pytorch:24.05-py3', 'nvcr.io', 'nvidia/pytorch', '24.05-py3', undefined, '$oauthtoken', 'nvcr.io/nvidia/pytorch:24.05-py3'],
    ['alice@example.com@ghcr.io#o/r:2', 'ghcr.io', 'o/r', '2', undefined, 'alice@example.com', 'ghcr.io/o/r:2'],
    // digests: the tag is ignored, as by enroot; the store name carries the digest
    [`ubuntu@${D}`, 'docker.io', 'library/ubuntu', undefined, D, undefined, `ubuntu:sha256-${'b'.repeat(64)}`],
    [`nvcr.io#nvidia/pytorch:24.05-py3@${D}`, 'nvcr.io', 'nvidia/pytorch', '24.05-py3', D, undefined, `nvcr.io/nvidia/pytorch:sha256-${'b'.repeat(64)}`],
    [`bob@quay.io#o/r@${D}`, 'quay.io', 'o/r', undefined, D, 'bob', `quay.io/o/r:sha256-${'b'.repeat(64)}`],
  ])('%s', (text, registry, repository, tag, digest, login, storeName) => {
    const parsed = parseImageArgument(text);
    expect(parsed).toMatchObject({ kind: 'registry', login, storeName, ref: { registry, repository, tag, digest } });
  });

  test('the import source is docker:// with the registry spelled out', () => {
    expect(parseImageArgument('nvcr.io#nvidia/pytorch:24.05-py3')).toMatchObject({ source: 'docker://nvcr.io/nvidia/pytorch:24.05-py3' });
    expect(parseImageArgument('ubuntu')).toMatchObject({ source: 'docker://docker.io/library/ubuntu:latest' });
  });
});

describe("strata's store names and files", () => {
  test.each(['~/mini:1', '~alice/mini:1', `sha256:${'c'.repeat(64)}`])('%s is a store name, never a registry image', (text) => {
    expect(parseImageArgument(text)).toEqual({ kind: 'store', text });
  });

  test.each(['./x.sqsh', '/lustre/images/x.sqsh', '../x.sqsh'])('%s is a squashfs file (Pyxis: a path)', (text) => {
    expect(parseImageArgument(text)).toEqual({ kind: 'file', path: text });
  });
});

describe('refused, with the reason', () => {
  test.each([
    ['', 'it is empty'],
    ['   ', 'it is empty'],
    ['Ubuntu:24.04', 'is not a valid repository name'],
    ['ubuntu:bad!tag', 'is not a valid tag'],
    ['nvcr.io#', 'it is empty'],
    ['#nvidia/pytorch', '"" is not a registry host'],
    ['bad host#x', 'contains a space'],
    ['@ubuntu', 'nothing before "@"'],
    ['oci://x', 'the scheme oci:// is not supported'],
    ['ubuntu\nFAKE', 'control character'],
    ['a'.repeat(2048), 'longer than 1024'],
  ])('%j', (text, why) => {
    const error = expectUserError(() => parseImageArgument(text), 'E_BAD_REF');
    expect(error.message).toContain(why);
    expect(error.message).not.toContain('\n');
  });

  test('a random long string (Pyxis invalid_args.bats) is one line, cut short', () => {
    const junk = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 37) % 256)).toString('base64');
    const error = expectUserError(() => parseImageArgument(junk), 'E_BAD_REF');
    expect(error.message.length).toBeLessThan(500);
  });

  test('dockerd:// says why (nodes cannot reach a local daemon) and what to do', () => {
    const error = expectUserError(() => parseImageArgument('dockerd://ubuntu'), 'E_BAD_REF');
    expect(error.summary).toMatch(/local dockerd daemon, which compute nodes cannot reach; push it to a registry/);
  });
});

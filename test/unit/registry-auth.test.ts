// WWW-Authenticate challenges as registries send them, and docker config credentials.

import { authFilePaths, credentialsFrom, parseChallenges } from '../../src/registry/auth.js';
import { expectUserError } from '../helpers/errors.js';

test('Docker Hub style Bearer challenge', () => {
  expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"')).toEqual([
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/ubuntu:pull' } },
  ]);
});

test('several challenges, unquoted values, escapes and spaces', () => {
  expect(parseChallenges('Basic realm="Registry Realm", Bearer realm=https://t/x , service = "s\\"q", error="insufficient_scope"')).toEqual([
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
    { scheme: 'bearer', params: { realm: 'https://t/x', service: 's"q', error: 'insufficient_scope' } },
  ]);
  expect(parseChallenges('')).toEqual([]);
  expect(parseChallenges('Negotiate')).toEqual([{ scheme: 'negotiate', params: {} }]);
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('credentials: auths.<host>.auth, Docker Hub under its v1 URL, passwords with colons', () => {
  const doc = { auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') }, 'nvcr.io': { auth: b64('$oauthtoken:a:b:c') }, 'r.example:5000': { username: 'u', password: 'p' } } };
  expect(credentialsFrom(doc, 'docker.io', 'f')).toEqual({ username: 'hub', password: 'pw' });
  expect(credentialsFrom(doc, 'nvcr.io', 'f')).toEqual({ username: '$oauthtoken', password: 'a:b:c' });
  expect(credentialsFrom(doc, 'r.example:5000', 'f')).toEqual({ username: 'u', password: 'p' });
  expect(credentialsFrom(doc, 'ghcr.io', 'f')).toBeUndefined();
  expect(credentialsFrom({}, 'ghcr.io', 'f')).toBeUndefined();
  expectUserError(() => credentialsFrom({ auths: { 'x.io': { auth: b64('nocolon') } } }, 'x.io', '/root/.docker/config.json'), 'E_AUTH_CONFIG');
});

test('REGISTRY_AUTH_FILE first, then ~/.docker/config.json', () => {
  expect(authFilePaths({ REGISTRY_AUTH_FILE: '/a.json', HOME: '/home/u' })).toEqual(['/a.json', '/home/u/.docker/config.json']);
  expect(authFilePaths({ HOME: '/home/u', DOCKER_CONFIG: '/etc/docker' })).toEqual(['/etc/docker/config.json']);
});

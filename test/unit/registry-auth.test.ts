// WWW-Authenticate challenges as registries send them, and docker config credentials.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StrataError } from '../../src/errors.js';
import { authFilePaths, credentialsFrom, enrootCredentialsPath, findCredentials, parseChallenges, parseNetrc } from '../../src/registry/auth.js';
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

describe("enroot's credentials file (netrc), as Pyxis users have it", () => {
  test('one-line and multi-line entries, comments, default and macdef skipped', () => {
    const text = [
      '# NVIDIA GPU Cloud',
      'machine nvcr.io login $oauthtoken password nvapi-123',
      'machine authn.nvidia.com login $oauthtoken password nvapi-123',
      'machine registry-1.docker.io',
      '  login hubuser',
      '  password hubpw',
      'macdef init',
      'machine not.an.entry login x password y',
      '',
      'default login anon password anon',
    ].join('\n');
    expect(parseNetrc(text)).toEqual([
      { machine: 'nvcr.io', login: '$oauthtoken', password: 'nvapi-123', evaluate: false },
      { machine: 'authn.nvidia.com', login: '$oauthtoken', password: 'nvapi-123', evaluate: false },
      { machine: 'registry-1.docker.io', login: 'hubuser', password: 'hubpw', evaluate: false },
    ]);
  });

  test('a password starting with $ is shell text to the end of its line (enroot evaluates it)', () => {
    expect(parseNetrc('machine 1.dkr.ecr.eu-west-2.amazonaws.com login AWS password $(aws ecr get-login-password --region eu-west-2)\n')).toEqual([
      { machine: '1.dkr.ecr.eu-west-2.amazonaws.com', login: 'AWS', password: '$(aws ecr get-login-password --region eu-west-2)', evaluate: true },
    ]);
  });

  test('the file is $ENROOT_CONFIG_PATH/.credentials, else under $XDG_CONFIG_HOME or ~/.config', () => {
    expect(enrootCredentialsPath({ ENROOT_CONFIG_PATH: '/e', HOME: '/h' })).toBe('/e/.credentials');
    expect(enrootCredentialsPath({ XDG_CONFIG_HOME: '/x', HOME: '/h' })).toBe('/x/enroot/.credentials');
    expect(enrootCredentialsPath({ HOME: '/h' })).toBe('/h/.config/enroot/.credentials');
  });

  test('findCredentials: enroot first, by host without port; USER@ picks the login; a missing one is an error naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-creds-'));
    try {
      mkdirSync(join(dir, '.config/enroot'), { recursive: true });
      writeFileSync(join(dir, '.config/enroot/.credentials'), 'machine reg.example login alice password a1\nmachine reg.example login bob password b1\nmachine cmd.example login c password $(printf %s s3cret)\n');
      mkdirSync(join(dir, '.docker'));
      writeFileSync(join(dir, '.docker/config.json'), JSON.stringify({ auths: { 'reg.example:5000': { auth: b64('docker:d1') } } }));
      const env = { HOME: dir };
      await expect(findCredentials('reg.example:5000', env)).resolves.toEqual({ username: 'alice', password: 'a1' });
      await expect(findCredentials('reg.example:5000', env, 'bob')).resolves.toEqual({ username: 'bob', password: 'b1' });
      await expect(findCredentials('reg.example:5000', env, 'docker')).resolves.toEqual({ username: 'docker', password: 'd1' });
      if (process.getuid?.() !== 0) await expect(findCredentials('cmd.example', env)).resolves.toEqual({ username: 'c', password: 's3cret' });
      else expect((await findCredentials('cmd.example', env).catch((e: Error) => e)) as Error).toMatchObject({ code: 'E_AUTH_CONFIG', message: expect.stringContaining('does not run commands from credentials files as root') });
      const missing = (await findCredentials('reg.example', env, 'carol').catch((e: Error) => e)) as StrataError;
      expect(missing.code).toBe('E_REGISTRY_AUTH');
      expect(missing.summary).toBe(`no password for carol@reg.example: neither ${dir}/.config/enroot/.credentials nor ~/.docker/config.json has one; add "machine reg.example login carol password ..." to ${dir}/.config/enroot/.credentials (strata cannot ask for a password at submit time)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

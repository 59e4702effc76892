// Registry authentication: parsing WWW-Authenticate challenges (RFC 7235, as registries send
// them) and finding credentials in docker's config (REGISTRY_AUTH_FILE, then
// ~/.docker/config.json; `auths.<host>.auth` = base64 "user:password"). Parsing is pure.

import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, userError } from '../errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull", Basic realm="x"` → challenges. */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let i = 0;
  const s = header;
  const skipSpace = () => {
    while (i < s.length && /[\s,]/.test(s[i])) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && /[!#$%&'*+\-.^_`|~\w]/.test(s[i])) i++;
    return s.slice(start, i);
  };
  skipSpace();
  while (i < s.length) {
    const scheme = token();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      while (i < s.length && /\s/.test(s[i])) i++;
      const save = i;
      const key = token();
      while (i < s.length && /\s/.test(s[i])) i++;
      if (!key || s[i] !== '=') {
        i = save;
        break;
      }
      i++;
      while (i < s.length && /\s/.test(s[i])) i++;
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i++];
        }
        i++;
      } else {
        // Unquoted: up to the next comma or space (servers put URLs here unquoted).
        const start = i;
        while (i < s.length && !/[\s,]/.test(s[i])) i++;
        value = s.slice(start, i);
      }
      challenge.params[key.toLowerCase()] = value;
      while (i < s.length && /\s/.test(s[i])) i++;
      if (s[i] === ',') {
        i++;
        // A comma may separate parameters or start the next challenge: a parameter has `=` after its name.
        const look = i;
        while (i < s.length && /\s/.test(s[i])) i++;
        token();
        while (i < s.length && /\s/.test(s[i])) i++;
        const isParam = s[i] === '=';
        i = look;
        if (!isParam) break;
      } else break;
    }
    skipSpace();
  }
  return challenges;
}

export interface Credentials {
  username: string;
  password: string;
}

/** The docker config files to read, first match wins. */
export function authFilePaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(env.DOCKER_CONFIG ?? join(env.HOME || homedir(), '.docker'), 'config.json'));
  return paths;
}

/** Keys a registry's entry may have in `auths`: docker writes Docker Hub as its v1 URL. */
function keysFor(registry: string): string[] {
  if (registry === DOCKER_HUB) return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io'];
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v2/`, `https://${registry}/v1/`];
}

/** Credentials for `registry` from one parsed config document, if it has any. Pure. */
export function credentialsFrom(doc: unknown, registry: string, file: string): Credentials | undefined {
  const auths = (doc as { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }> })?.auths;
  if (!auths || typeof auths !== 'object') return undefined;
  for (const key of keysFor(registry)) {
    const entry = auths[key];
    if (!entry) continue;
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
    if (typeof entry.auth !== 'string') continue;
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon <= 0) {
      throw userError('E_AUTH_CONFIG', `the credentials for ${registry} in ${file} are not base64 "user:password"`, { hint: 'log in again (docker login / skopeo login) or fix the file' });
    }
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  return undefined;
}

export async function findCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  for (const file of authFilePaths(env)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') continue;
      throw userError('E_AUTH_CONFIG', `cannot read registry credentials ${file}: ${(error as Error).message}`, { hint: 'check its permissions' });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw userError('E_AUTH_CONFIG', `registry credentials file ${file} is not valid JSON`, { hint: 'fix it or log in again' });
    }
    const found = credentialsFrom(doc, registry, file);
    if (found) return found;
  }
  return undefined;
}

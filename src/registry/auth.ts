// Registry authentication: parsing WWW-Authenticate challenges (RFC 7235, as registries send
// them) and finding credentials: enroot's netrc ($ENROOT_CONFIG_PATH/.credentials, default
// ~/.config/enroot/.credentials, as Pyxis users have it), then docker's config
// (REGISTRY_AUTH_FILE, then ~/.docker/config.json; `auths.<host>.auth` = base64 "user:password").
// Both are read by this process, which runs as the user who asked. Parsing is pure.

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, firstLine, userError } from '../errors.js';
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

/** enroot's credentials file: $ENROOT_CONFIG_PATH/.credentials, else under $XDG_CONFIG_HOME or ~/.config. */
export function enrootCredentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const config = env.ENROOT_CONFIG_PATH || join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'enroot');
  return join(config, '.credentials');
}

export interface NetrcEntry {
  machine: string;
  login: string;
  password: string;
  /** enroot's form: a password starting with `$` is shell text (`$(aws ecr get-login-password)`). */
  evaluate: boolean;
}

/**
 * A netrc file as enroot reads it: `machine HOST login USER password PASS`, on one line or
 * several; a password starting with `$` runs to the end of its line (enroot hands it to the
 * shell). `default` entries and macros are skipped: enroot never uses them for registries.
 */
export function parseNetrc(text: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  let current: Partial<NetrcEntry> | undefined;
  const finish = () => {
    if (current?.machine && current.login !== undefined && current.password !== undefined) entries.push(current as NetrcEntry);
    current = undefined;
  };
  let inMacro = false;
  for (const line of text.split('\n')) {
    if (inMacro) {
      if (!line.trim()) inMacro = false;
      continue;
    }
    if (line.trim().startsWith('#')) continue;
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    for (let i = 0; i < tokens.length; i++) {
      const word = tokens[i];
      const value = tokens[i + 1];
      if (word === 'machine' && value !== undefined) {
        finish();
        current = { machine: value, evaluate: false };
        i++;
      } else if (word === 'default') {
        finish();
      } else if (word === 'macdef') {
        finish();
        inMacro = true;
        break;
      } else if (current && (word === 'login' || word === 'account') && value !== undefined) {
        if (word === 'login') current.login = value;
        i++;
      } else if (current && word === 'password' && value !== undefined) {
        if (value.startsWith('$')) {
          current.password = line.trim().split(/\s+/).slice(i + 1).join(' ');
          current.evaluate = true;
          break;
        }
        current.password = value;
        i++;
      }
    }
  }
  finish();
  return entries;
}

/** The netrc machine names a registry may be listed under (enroot: the host without its port). */
function netrcMachines(registry: string): string[] {
  if (registry === DOCKER_HUB) return ['registry-1.docker.io', 'docker.io', 'index.docker.io'];
  return [...new Set([registry.replace(/:\d+$/, ''), registry])];
}

async function enrootCredentials(registry: string, login: string | undefined, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const file = enrootCredentialsPath(env);
  const text = await readCredentialsFile(file);
  if (text === undefined) return undefined;
  const machines = netrcMachines(registry);
  const entry = parseNetrc(text).find((e) => machines.includes(e.machine) && (login === undefined || e.login === login));
  if (!entry) return undefined;
  if (!entry.evaluate) return { username: entry.login, password: entry.password };
  return { username: entry.login, password: await evaluatePassword(entry.password, registry, file) };
}

/**
 * enroot runs a `$...` password through the shell (`echo $(gcloud auth print-access-token)`). So
 * does strata, as the user who runs this (their own file, their own shell), and never as root: a
 * root process must not run what a user's file says.
 */
function evaluatePassword(text: string, registry: string, file: string): Promise<string> {
  if (process.getuid?.() === 0) {
    return Promise.reject(userError('E_AUTH_CONFIG', `the password for ${registry} in ${file} is a command, and strata does not run commands from credentials files as root`, {
      hint: 'run this as the user the credentials belong to, or put the password itself in the file',
    }));
  }
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', `echo ${text}`], { timeout: 60_000, maxBuffer: 1024 * 1024 }, (error, stdout) => {
      const password = stdout.replace(/\n+$/, '');
      if (error || !password) {
        reject(userError('E_AUTH_CONFIG', `the password command for ${registry} in ${file} failed${error ? `: ${firstLine(error.message)}` : ' (it printed nothing)'}`, {
          hint: 'run it by hand to see why (e.g. log in to the cloud provider again)',
        }));
      } else resolve(password);
    });
  });
}

async function readCredentialsFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return undefined;
    throw userError('E_AUTH_CONFIG', `cannot read registry credentials ${file}: ${(error as Error).message}`, { hint: 'check its permissions' });
  }
}

/**
 * Credentials for `registry`: enroot's file first (what Pyxis users have), then docker's. `login`
 * (Pyxis's `USER@`) takes only that login's; without a password for it, that is an error.
 */
export async function findCredentials(registry: string, env: NodeJS.ProcessEnv = process.env, login?: string): Promise<Credentials | undefined> {
  const fromEnroot = await enrootCredentials(registry, login, env);
  if (fromEnroot) return fromEnroot;
  for (const file of authFilePaths(env)) {
    const text = await readCredentialsFile(file);
    if (text === undefined) continue;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw userError('E_AUTH_CONFIG', `registry credentials file ${file} is not valid JSON`, { hint: 'fix it or log in again' });
    }
    const found = credentialsFrom(doc, registry, file);
    if (found && (login === undefined || found.username === login)) return found;
  }
  if (login !== undefined) {
    throw userError('E_REGISTRY_AUTH', `no password for ${login}@${registry}: neither ${enrootCredentialsPath(env)} nor ~/.docker/config.json has one`, {
      hint: `add "machine ${netrcMachines(registry)[0]} login ${login} password ..." to ${enrootCredentialsPath(env)} (strata cannot ask for a password at submit time)`,
    });
  }
  return undefined;
}

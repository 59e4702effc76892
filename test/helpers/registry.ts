// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 at a
// free port, with its own storage and config (anonymous, htpasswd Basic, or Bearer tokens from a
// small token server written here to the documented token protocol), stopped by the test.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Registry {
  host: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export type RegistryAuth =
  | { kind: 'none' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; realm: string; service: string; issuer: string; certPath: string };

/** bcrypt, which is all distribution's htpasswd reads (libxcrypt through Debian's Python); the lowest cost, for speed. */
const bcrypt = (password: string) =>
  execFileSync('/usr/bin/python3', ['-W', 'ignore::DeprecationWarning', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password], { encoding: 'utf8' }).trim();

export async function startRegistry(dir: string, auth: RegistryAuth = { kind: 'none' }): Promise<Registry> {
  mkdirSync(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  let authYaml = '';
  if (auth.kind === 'htpasswd') {
    writeFileSync(join(dir, 'htpasswd'), Object.entries(auth.users).map(([user, password]) => `${user}:${bcrypt(password)}\n`).join(''));
    authYaml = `auth:\n  htpasswd:\n    realm: strata-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth.kind === 'token') {
    authYaml = `auth:\n  token:\n    realm: ${auth.realm}\n    service: ${auth.service}\n    issuer: ${auth.issuer}\n    rootcertbundle: ${auth.certPath}\n`;
  }
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${authYaml}`,
  );
  // Its log goes to a file: a pipe nobody drains while a test blocks would stall the registry.
  const logPath = join(dir, 'registry.log');
  const log = openSync(logPath, 'w');
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', log, log] });
  closeSync(log);
  const stderr = () => readFileSync(logPath, 'utf8');
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then((r) => r.status, () => 0);
    if (up === 200 || up === 401) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start: ${stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { host, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    child.kill('SIGTERM');
  });
}

/** skopeo copy, asynchronously: a token server in this process must keep answering meanwhile. */
export async function push(source: string, destination: string, extra: string[] = []): Promise<void> {
  await promisify(execFile)('/usr/bin/skopeo', ['copy', '-q', '--dest-tls-verify=false', ...extra, source, destination], { timeout: 120_000 });
}

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

export interface TokenServer {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Token requests seen: the scope asked for and whether valid credentials came with it. */
  requests: { scope: string; user?: string }[];
  stop(): Promise<void>;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A token server per https://distribution.github.io/distribution/spec/auth/token/: GET
 * realm?service=&scope=, Basic credentials checked, a JWT (RS256, x5c = the certificate the
 * registry trusts) granting what was asked for to a known user.
 */
export async function startTokenServer(dir: string, users: Record<string, string>): Promise<TokenServer> {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=strata-test-token'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyPath));
  const certDer = new X509Certificate(readFileSync(certPath)).raw;
  const service = 'strata-test-registry';
  const issuer = 'strata-test-issuer';
  const requests: TokenServer['requests'] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scope = url.searchParams.get('scope') ?? '';
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [user, password] = basic ? Buffer.from(basic, 'base64').toString().split(':') : [];
    const known = user !== undefined && users[user] === password;
    requests.push({ scope, user: known ? user : undefined });
    if (basic && !known) {
      res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const access = known
      ? scope.split(' ').filter(Boolean).map((s) => {
          const [type, name, actions] = s.split(':');
          return { type, name, actions: actions.split(',') };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
    const claims = base64url(JSON.stringify({ iss: issuer, sub: user ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
    const signature = base64url(sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), key));
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${signature}`, expires_in: 300 }));
  });
  const port = await listen(server);
  return { realm: `http://127.0.0.1:${port}/token`, service, issuer, certPath, requests, stop: () => close(server) };
}

export type Fault = 'none' | 'status500' | 'truncate' | 'corrupt' | 'stall';

export interface FaultyProxy {
  host: string;
  /** What to do to the next blob downloads (GET /v2/.../blobs/<digest> of more than 1 KiB). */
  fault: Fault;
  stop(): Promise<void>;
}

/** An HTTP proxy in front of a registry that breaks layer downloads on purpose. */
export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const sockets = new Set<import('node:net').Socket>();
  const proxy: FaultyProxy = { host: '', fault: 'none', stop: async () => undefined };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const upstream = httpRequest({ host: '127.0.0.1', port: Number(target.split(':')[1]), path: req.url, method: req.method, headers: { ...req.headers, host: target } }, (up) => {
      const isBlob = /\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET' && Number(up.headers['content-length'] ?? 0) > 1024;
      const fault = isBlob ? proxy.fault : 'none';
      if (fault === 'status500') {
        up.resume();
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end('injected failure');
        return;
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (fault === 'none') {
        up.pipe(res);
        return;
      }
      const length = Number(up.headers['content-length']);
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        const half = Math.floor(length / 2);
        if (fault === 'corrupt') {
          const copy = Buffer.from(chunk);
          if (sent <= half && half < sent + copy.length) copy[half - sent] ^= 0x01;
          sent += copy.length;
          res.write(copy);
          return;
        }
        if (sent + chunk.length >= half) {
          res.write(chunk.subarray(0, Math.max(0, half - sent)));
          sent = half;
          up.destroy();
          if (fault === 'truncate') res.socket?.destroy(); // the connection dies mid-body
          return; // stall: nothing more, ever
        }
        sent += chunk.length;
        res.write(chunk);
      });
      up.on('end', () => res.end());
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  proxy.host = `127.0.0.1:${port}`;
  proxy.stop = async () => {
    for (const socket of sockets) socket.destroy();
    await close(server);
  };
  return proxy;
}

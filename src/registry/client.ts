// A client for the OCI distribution API (GET manifests and blobs of one repository) over Node's
// fetch: HTTPS, or plain HTTP for --insecure/localhost registries; anonymous access, Basic, and
// Bearer tokens obtained through the WWW-Authenticate challenge (the docker token protocol).
// Every failure becomes one clear user error naming the registry and what to do.

import { StrataError, userError } from '../errors.js';
import { findCredentials, parseChallenges, type Challenge, type Credentials } from './auth.js';
import { formatRegistryRef, usesPlainHttp, type RegistryRef } from './reference.js';

export interface RegistryClientOptions {
  insecure?: boolean;
  /** Credentials lookup (tests pass their own environment). */
  env?: NodeJS.ProcessEnv;
  /** Pyxis's `USER@`: use this login's credentials. */
  login?: string;
  /** Attempts for a request that failed with a 5xx or a network error before any byte arrived. */
  attempts?: number;
}

const USER_AGENT = 'strata (OCI distribution client)';
const MAX_DOCUMENT = 16 * 1024 * 1024;

export class RegistryClient {
  private readonly base: string;
  private authorization?: string;
  private credentials?: Credentials | null;
  readonly what: string;

  constructor(
    readonly ref: RegistryRef,
    private readonly options: RegistryClientOptions = {},
  ) {
    const scheme = usesPlainHttp(ref, options.insecure ?? false) ? 'http' : 'https';
    this.base = `${scheme}://${ref.apiHost}/v2/${ref.repository}`;
    this.what = `docker://${formatRegistryRef(ref)}`;
  }

  /** A manifest (or index) by tag or digest: its bytes, Content-Type and Docker-Content-Digest. */
  async manifest(reference: string, accept: string): Promise<{ bytes: Buffer; mediaType: string; digest?: string }> {
    const response = await this.get(`manifests/${reference}`, accept, `manifest ${reference}`);
    const bytes = await readLimited(response, MAX_DOCUMENT, `manifest ${reference} of ${this.what}`);
    return { bytes, mediaType: response.headers.get('content-type') ?? '', digest: response.headers.get('docker-content-digest') ?? undefined };
  }

  async blob(digest: string): Promise<Buffer> {
    return readLimited(await this.get(`blobs/${digest}`, '*/*', `blob ${digest}`), MAX_DOCUMENT, `blob ${digest} of ${this.what}`);
  }

  /** A blob as a stream; a connection that breaks off mid-way becomes an E_DOWNLOAD error. */
  async blobStream(digest: string): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.get(`blobs/${digest}`, '*/*', `blob ${digest}`);
    const what = `layer ${digest} from ${this.what}`;
    const body = response.body;
    if (!body) throw userError('E_DOWNLOAD', `${what}: the registry sent no data`, { hint: 'try again later' });
    return (async function* () {
      let received = 0;
      try {
        for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
          received += chunk.length;
          yield chunk;
        }
      } catch (error) {
        if (error instanceof StrataError) throw error;
        throw userError('E_DOWNLOAD', `download of ${what} broke off after ${received} bytes: ${causeText(error)}`, {
          hint: 'check the network and try again; nothing was published',
          cause: error,
        });
      }
    })();
  }

  private async get(path: string, accept: string, what: string): Promise<Response> {
    const url = `${this.base}/${path}`;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, { headers: this.headers(accept), redirect: 'follow' });
      } catch (error) {
        if (attempt < (this.options.attempts ?? 3)) {
          await sleep(300 * attempt);
          continue;
        }
        throw this.unreachable(error);
      }
      if (response.ok) return response;
      await response.body?.cancel().catch(() => undefined);
      if (response.status === 401 && !authRetried) {
        authRetried = true;
        await this.authenticate(response.headers.get('www-authenticate') ?? '');
        attempt--;
        continue;
      }
      if (response.status >= 500 && attempt < (this.options.attempts ?? 3)) {
        await sleep(300 * attempt);
        continue;
      }
      throw this.httpError(response, what);
    }
  }

  private headers(accept: string): Record<string, string> {
    return { Accept: accept, 'User-Agent': USER_AGENT, ...(this.authorization ? { Authorization: this.authorization } : {}) };
  }

  private async loadCredentials(): Promise<Credentials | undefined> {
    if (this.credentials === undefined) this.credentials = (await findCredentials(this.ref.registry, this.options.env, this.options.login)) ?? null;
    return this.credentials ?? undefined;
  }

  /** Answers a 401: Bearer (fetch a token, with credentials if we have them) or Basic. */
  private async authenticate(header: string): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const credentials = await this.loadCredentials();
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer, credentials)}`;
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!credentials) throw this.needsLogin();
      this.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      return;
    }
    throw userError('E_REGISTRY_AUTH', `${this.ref.registry} asks for authentication strata cannot do (${header || 'no WWW-Authenticate header'})`, {
      hint: 'the registry must offer Bearer or Basic authentication',
    });
  }

  private async token(challenge: Challenge, credentials: Credentials | undefined): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw userError('E_REGISTRY_AUTH', `${this.ref.registry} sent a Bearer challenge without a realm`, { hint: 'the registry is misconfigured' });
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw userError('E_REGISTRY_AUTH', `${this.ref.registry} names an invalid token server "${realm}"`, { hint: 'the registry is misconfigured' });
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope || `repository:${this.ref.repository}:pull`);
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: 'application/json' };
    if (credentials) headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    let response: Response;
    try {
      response = await fetch(url, { headers });
    } catch (error) {
      throw userError('E_REGISTRY_UNREACHABLE', `cannot reach the token server ${url.origin} of ${this.ref.registry}: ${causeText(error)}`, {
        hint: 'check the network',
        cause: error,
      });
    }
    if (response.status === 401 || response.status === 403) throw credentials ? this.refused() : this.needsLogin();
    if (!response.ok) {
      throw userError('E_REGISTRY_AUTH', `the token server of ${this.ref.registry} answered ${response.status} ${response.statusText}`, { hint: 'try again later' });
    }
    const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!token) throw userError('E_REGISTRY_AUTH', `the token server of ${this.ref.registry} sent no token`, { hint: 'the registry is misconfigured' });
    return token;
  }

  private needsLogin() {
    return userError('E_REGISTRY_AUTH', `${this.what} needs credentials and none were found for ${this.ref.registry}`, {
      hint: `log in (docker login / skopeo login ${this.ref.registry}), or add "machine ${this.ref.registry.replace(/:\d+$/, '')} login USER password ..." to ~/.config/enroot/.credentials`,
    });
  }

  private refused() {
    return userError('E_REGISTRY_AUTH', `${this.ref.registry} refused the credentials for ${this.what}`, {
      hint: 'check the user name and password (docker login again), and that the account may pull this repository',
    });
  }

  private httpError(response: Response, what: string): StrataError {
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (response.status === 401 || response.status === 403) return this.authorization ? this.refused() : this.needsLogin();
    if (response.status === 404) {
      return userError('E_UNKNOWN_IMAGE', `${this.what}: ${what} not found (404)`, {
        hint: what.startsWith('manifest') ? 'check the repository name and tag (is it private? then log in)' : 'the registry lacks a blob of this image; push it again',
      });
    }
    if (response.status === 429) return userError('E_REGISTRY', `${this.ref.registry} limits requests (429 Too Many Requests)`, { hint: 'wait and try again, or log in for a higher limit' });
    return userError('E_REGISTRY', `${this.ref.registry} answered ${status} for ${what} of ${this.what}`, { hint: response.status >= 500 ? 'the registry has a problem; try again later' : 'check the reference' });
  }

  private unreachable(error: unknown): StrataError {
    const why = causeText(error);
    const tls = /SSL|TLS|EPROTO|wrong version/i.test(why);
    return userError('E_REGISTRY_UNREACHABLE', `cannot reach registry ${this.ref.apiHost}: ${why}`, {
      hint: tls ? 'if the registry speaks plain HTTP, add --insecure' : 'check the registry name and the network',
      cause: error,
    });
  }
}

/** fetch's errors hide the reason in `cause` ("fetch failed" → "connect ECONNREFUSED 127.0.0.1:1"). */
function causeText(error: unknown): string {
  const cause = (error as { cause?: { message?: string; code?: string } })?.cause;
  return cause?.message || cause?.code || (error as Error)?.message || String(error);
}

async function readLimited(response: Response, limit: number, what: string): Promise<Buffer> {
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw userError('E_BAD_MANIFEST', `${what} is ${length} bytes, too large for an image document`, { hint: 'check the reference' });
  }
  try {
    return Buffer.from(await response.arrayBuffer());
  } catch (error) {
    throw userError('E_DOWNLOAD', `download of ${what} broke off: ${causeText(error)}`, { hint: 'try again', cause: error });
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

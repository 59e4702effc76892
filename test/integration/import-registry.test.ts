// Importing from a real registry (docker-registry on 127.0.0.1, images pushed with skopeo):
// by tag and by digest, multi-platform, anonymous, Basic (htpasswd) and Bearer-token auth;
// registry errors, broken and corrupt downloads, and a killed import leave the store consistent.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayer, gzipOnly, richImage, writeLayout, type ImageSpec } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { freePort, startFaultyProxy, startRegistry, startTokenServer, push, type FaultyProxy, type Registry, type TokenServer } from '../helpers/registry.js';
import { makeSite, STRATA, type Site } from '../helpers/site.js';
import { compareTrees, PER_JOB_PATHS } from '../helpers/tree-compare.js';

let site: Site;
let before: NodeState;
let layout: string;
let open: Registry;
let basic: Registry;
let tokens: TokenServer;
let tokenRegistry: Registry;
let proxy: FaultyProxy;
const USERS = { alice: 'wonderland' };

const layersInStore = () => (existsSync(join(site.store, 'layers/sha256')) ? readdirSync(join(site.store, 'layers/sha256')).length : 0);
const partials = () => (existsSync(join(site.store, 'tmp')) ? readdirSync(join(site.store, 'tmp')) : []);
const authFile = (user: string, password: string, host: string) => {
  const path = join(site.root, `auth-${user}-${password}.json`);
  writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return path;
};
const small = (marker: string, architecture = 'amd64', variant?: string): ImageSpec => ({
  ref: marker,
  architecture,
  variant,
  layers: [
    { compression: 'gzip', tar: busyboxLayer() },
    { compression: 'gzip', tar: busyboxLayer([{ name: 'etc/marker', content: `${marker}\n`.repeat(20_000) }]) },
  ],
});

beforeAll(async () => {
  before = nodeState();
  site = makeSite('import-registry');
  layout = join(site.root, 'layout');
  writeLayout(layout, [richImage('rich'), gzipOnly(richImage('rich'), 'rich-gzip'), small('fault'), small('killed'), small('private')], [
    { ref: 'multi', images: [small('amd64'), small('arm64', 'arm64', 'v8')] },
  ]);
  open = await startRegistry(join(site.root, 'reg-open'));
  basic = await startRegistry(join(site.root, 'reg-basic'), { kind: 'htpasswd', users: USERS });
  tokens = await startTokenServer(site.root, USERS);
  tokenRegistry = await startRegistry(join(site.root, 'reg-token'), { kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certPath: tokens.certPath });
  proxy = await startFaultyProxy(open.host);
  await push(`oci:${layout}:rich`, `docker://${open.host}/test/rich:1`);
  await push(`oci:${layout}:multi`, `docker://${open.host}/test/multi:1`, ['--all']);
  await push(`oci:${layout}:fault`, `docker://${open.host}/test/fault:1`);
  await push(`oci:${layout}:killed`, `docker://${open.host}/test/killed:1`);
  await push(`oci:${layout}:private`, `docker://${basic.host}/private/img:1`, ['--dest-creds', 'alice:wonderland']);
  await push(`oci:${layout}:private`, `docker://${tokenRegistry.host}/private/img:1`, ['--dest-creds', 'alice:wonderland']);
}, 120_000);

afterAll(async () => {
  await Promise.all([open, basic, tokenRegistry].map((r) => r?.stop()));
  await tokens?.stop();
  await proxy?.stop();
  expectNodeStateUnchanged(before);
  site.remove();
});

test('by tag: the job sees what umoci unpacks; by digest: the same image, nothing downloaded again', async () => {
  const byTag = await site.run(['import', `docker://${open.host}/test/rich:1`]);
  expect(byTag.stderr).toMatch(new RegExp(`^imported ${open.host}/test/rich:1 \\(sha256:[0-9a-f]{64}\\) from docker://${open.host}/test/rich:1: 3 layers \\(0 already stored\\)`));
  expect(byTag.code).toBe(0);
  const tag = `${open.host}/test/rich:1`;
  const bundle = join(site.root, 'bundle');
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${layout}:rich-gzip`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  expect((await site.run(['prolog', '--job', 'reg1', '--uid', '0', '--gid', '0', '--image', tag])).stderr).toBe('');
  try {
    expect(compareTrees(join(bundle, 'rootfs'), join(site.runtime, 'jobs/reg1/rootfs'), { skip: PER_JOB_PATHS })).toBeUndefined();
  } finally {
    expect((await site.run(['epilog', '--job', 'reg1'])).code).toBe(0);
  }

  const upstream = JSON.parse((await site.run(['inspect', tag])).stdout).annotations['org.strata.source.manifest'];
  expect(upstream).toMatch(/^sha256:/);
  const byDigest = await site.run(['import', `docker://${open.host}/test/rich@${upstream}`, '--tag', 'rich:pinned']);
  expect(byDigest.stderr).toMatch(/3 layers \(3 already stored\), 0B read/);
  const layers = async (ref: string) => JSON.parse((await site.run(['inspect', ref])).stdout).layers.map((l: { digest: string }) => l.digest);
  expect(await layers('rich:pinned')).toEqual(await layers(tag));
}, 120_000);

test('a multi-platform image: this machine\'s platform, or the one asked for', async () => {
  expect((await site.run(['import', `docker://${open.host}/test/multi:1`, '--tag', 'multi:host'])).code).toBe(0);
  expect((await site.run(['import', `docker://${open.host}/test/multi:1`, '--tag', 'multi:arm', '--platform', 'linux/arm64'])).code).toBe(0);
  const arch = async (tag: string) => JSON.parse((await site.run(['inspect', tag])).stdout).config.architecture;
  expect([await arch('multi:host'), await arch('multi:arm')]).toEqual([process.arch === 'arm64' ? 'arm64' : 'amd64', 'arm64']);
});

test('an unknown repository or tag is a one-line error', async () => {
  const missing = await site.run(['import', `docker://${open.host}/test/rich:nope`]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toBe(`strata: docker://${open.host}/test/rich:nope: manifest nope not found (404); check the repository name and tag (is it private? then log in)\n`);
  const closed = await freePort();
  const unreachable = await site.run(['import', `docker://127.0.0.1:${closed}/test/rich:1`]);
  expect(unreachable.stderr).toBe(`strata: cannot reach registry 127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}; check the registry name and the network\n`);
});

test('Basic auth (htpasswd): credentials from REGISTRY_AUTH_FILE; none or wrong ones are clear errors', async () => {
  const ref = `docker://${basic.host}/private/img:1`;
  const none = await site.run(['import', ref, '--tag', 'private:basic'], { env: { HOME: site.root } });
  expect(none.stderr).toMatch(new RegExp(`^strata: ${ref.replace(/[.]/g, '\\.')} needs credentials and none were found for ${basic.host}; log in`));
  const wrong = await site.run(['import', ref, '--tag', 'private:basic'], { env: { HOME: site.root, REGISTRY_AUTH_FILE: authFile('alice', 'nope', basic.host) } });
  expect(wrong.stderr).toMatch(new RegExp(`^strata: ${basic.host} refused the credentials`));
  const good = await site.run(['import', ref, '--tag', 'private:basic'], { env: { HOME: site.root, REGISTRY_AUTH_FILE: authFile('alice', 'wonderland', basic.host) } });
  expect(good.stderr).toMatch(/^imported private:basic/);
  expect(good.code).toBe(0);
});

test('Bearer tokens: credentials from ~/.docker/config.json go to the token server, the token to the registry', async () => {
  const ref = `docker://${tokenRegistry.host}/private/img:1`;
  const home = join(site.root, 'home-token');
  execFileSync('mkdir', ['-p', join(home, '.docker')]);
  writeFileSync(join(home, '.docker/config.json'), JSON.stringify({ auths: { [tokenRegistry.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }));
  tokens.requests.length = 0;
  const good = await site.run(['import', ref, '--tag', 'private:token'], { env: { HOME: home } });
  expect(good.stderr).toMatch(/^imported private:token/);
  expect(tokens.requests).toContainEqual({ scope: 'repository:private/img:pull', user: 'alice' });
  // Anonymous: the token server hands out a token without access; the registry then refuses.
  const anonymous = await site.run(['import', ref, '--tag', 'private:anon'], { env: { HOME: site.root } });
  expect(anonymous.code).toBe(2);
  expect(anonymous.stderr).toMatch(/^strata: .*(needs credentials|refused the credentials)/);
});

describe('broken downloads publish nothing', () => {
  const ref = () => `docker://${proxy.host}/test/fault:1`;
  afterEach(() => {
    proxy.fault = 'none';
  });
  test.each([
    ['status500', /^strata: 127\.0\.0\.1:\d+ answered 500 Internal Server Error for blob sha256:[0-9a-f]{64} of docker:\/\/.*; the registry has a problem; try again later\n$/],
    ['truncate', /^strata: (download of layer sha256:[0-9a-f]{64} from docker:\/\/.* broke off after \d+ bytes|cannot read layer)/],
    ['corrupt', /^strata: layer \d \(sha256:[0-9a-f]{64}\) of docker:\/\/.* does not match its digest: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}; nothing was published; /],
  ] as const)('%s', async (fault, message) => {
    proxy.fault = fault;
    const layers = layersInStore();
    const result = await site.run(['import', ref(), '--tag', `fault:${fault}`]);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
    expect(layersInStore()).toBe(layers);
    expect(partials()).toEqual([]);
    expect((await site.run(['resolve', `fault:${fault}`])).code).toBe(2);
  }, 60_000);
});

test('a killed import leaves only a partial, which the next import removes', async () => {
  proxy.fault = 'stall';
  const child = spawn(process.execPath, [STRATA, 'import', `docker://${proxy.host}/test/killed:1`, '--tag', 'killed:1'], { env: site.env, stdio: 'ignore' });
  try {
    for (let i = 0; partials().length === 0; i++) {
      if (i > 100) throw new Error('the import never started writing');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    proxy.fault = 'none';
  }
  expect(partials().length).toBeGreaterThan(0);
  expect((await site.run(['resolve', 'killed:1'])).code).toBe(2);
  const again = await site.run(['import', `docker://${proxy.host}/test/killed:1`, '--tag', 'killed:1']);
  expect(again.code).toBe(0);
  expect(partials()).toEqual([]);
}, 60_000);

// Who may write the store (issue #3 item 7), with real accounts, real sudo and real setpriv:
// everything in the store is readable by all and written only by its owner (here the service
// account strata-store, not root); root's writes go through the owner; a user, where the site
// enables user imports, imports into their own ~USER/ namespace through the site's sudoers rule,
// with the source read as that user. Nothing a user sends can reach outside their namespace.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFrame } from '../../src/store/write/relay/frames.js';
import { busyboxLayer, gzipOnly, layerTar, richImage, writeLayout } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, makeTree, STRATA, type RunOutput, type Site } from '../helpers/site.js';
import { compareTrees, PER_JOB_PATHS } from '../helpers/tree-compare.js';
import { push, startRegistry } from '../helpers/registry.js';
import { testUsers } from '../helpers/test-users.js';

const OWNER = 'strata-store';
const ALICE = 'strata-alice';
const BOB = 'strata-bob';
const SUDOERS = '/etc/sudoers.d/strata-test-store-permissions';
const users = testUsers();

let site: Site;
let before: NodeState;
let archive: string;
const ids = (name: string) => ({ uid: Number(execFileSync('/usr/bin/id', ['-u', name])), gid: Number(execFileSync('/usr/bin/id', ['-g', name])) });

/** strata as `user` (a login name) via setpriv, with the site's environment. */
function runAs(user: string, args: string[], options: { env?: NodeJS.ProcessEnv; umask?: string } = {}): Promise<RunOutput> {
  const { uid, gid } = ids(user);
  const command = options.umask ? ['/bin/sh', '-c', `umask ${options.umask} && exec "$@"`, 'sh', process.execPath, STRATA, ...args] : [process.execPath, STRATA, ...args];
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', ...command], { cwd: '/', env: { ...site.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Every path in the store with its owner and mode: what "nothing changed" is compared on. */
function storeListing(): string[] {
  const out = execFileSync('/usr/bin/find', [site.store, '-printf', '%u %m %y %P\n']).toString().trim().split('\n');
  return out.sort();
}


beforeAll(() => {
  before = nodeState();
  users.ensure(OWNER, { system: true });
  users.ensure(ALICE);
  users.ensure(BOB);
  site = makeSite('store-perms', 'import:\n  user_imports: true\n');
  const owner = ids(OWNER);
  chownSync(site.store, owner.uid, owner.gid);
  // The writer logs as the store owner: the log must be writable by it (docs/install.md).
  writeFileSync(site.logFile, '');
  chownSync(site.logFile, owner.uid, owner.gid);
  // What a site installs (docs/install.md), plus keeping STRATA_CONFIG so the writer finds this
  // test's configuration (the writer checks that the file is root's and nobody else's).
  writeFileSync(SUDOERS, `Defaults env_keep += "STRATA_CONFIG"\nALL ALL=(${OWNER}) NOPASSWD: ${STRATA} _store-write\n`, { mode: 0o440 });
  expect(spawnSync('/usr/sbin/visudo', ['-c', '-f', SUDOERS]).status).toBe(0);

  // Alice's image, in a file only she can read: the writer (strata-store) could not open it.
  const layout = join(site.root, 'layout');
  writeLayout(layout, [richImage('rich'), gzipOnly(richImage('rich'), 'rich-gzip')]);
  const private_ = join(site.root, 'alice');
  mkdirSync(private_, { mode: 0o700 });
  archive = join(private_, 'rich.tar');
  execFileSync('/usr/bin/tar', ['-cf', archive, '-C', layout, '.']);
  chmodSync(archive, 0o600);
  execFileSync('/usr/bin/chown', ['-R', `${ALICE}:`, private_]);
});

afterAll(() => {
  rmSync(SUDOERS, { force: true });
  expectNodeStateUnchanged(before);
  site.remove();
  users.removeMade();
});

test("root's import into a store a service account owns: every file is the owner's, readable by all, and a job starts from it", async () => {
  const tree = makeTree(join(site.root, 'base-tree'), { 'etc/site-release': 'site 1\n' });
  const result = await site.run(['import', `dir:${tree}`, '--tag', 'base:1']);
  expect(result.stderr).toMatch(/^imported base:1: 1 layers/);
  expect(result.code).toBe(0);
  for (const line of storeListing()) {
    const [user, mode, type, path] = line.split(' ');
    expect({ path, user }).toEqual({ path, user: OWNER });
    const bits = parseInt(mode, 8);
    expect({ path, writableByOthers: (bits & 0o022) !== 0, readableByAll: (bits & 0o004) !== 0 }).toEqual({ path, writableByOthers: false, readableByAll: true });
    if (type === 'd') expect({ path, searchable: (bits & 0o001) !== 0 }).toEqual({ path, searchable: true });
  }
  const prolog = await site.run(['prolog', '--job', 'perm1', '--uid', String(ids(ALICE).uid), '--gid', String(ids(ALICE).gid), '--image', 'base:1']);
  expect(prolog.stderr).toBe('');
  try {
    expect(readFileSync(join(site.runtime, 'jobs/perm1/rootfs/etc/site-release'), 'utf8')).toBe('site 1\n');
  } finally {
    expect((await site.run(['epilog', '--job', 'perm1'])).code).toBe(0);
  }
});

test("a store.path that is a symlink to the store: root still writes as the store's owner", async () => {
  const link = join(site.root, 'store-link');
  symlinkSync(site.store, link);
  const config = join(site.root, 'strata-link.yaml');
  writeFileSync(config, readFileSync(site.configPath, 'utf8').replace(`path: ${site.store}\n`, `path: ${link}\n`));
  const tree = makeTree(join(site.root, 'link-tree'), { 'etc/link-release': 'link 1\n' });
  const result = await site.run(['import', `dir:${tree}`, '--tag', 'linked:1'], { env: { STRATA_CONFIG: config } });
  expect(result.code).toBe(0);
  for (const line of storeListing()) expect({ line, user: line.split(' ')[0] }).toEqual({ line, user: OWNER });
});

test("the owner's own import with umask 077 still leaves the store readable by every user", async () => {
  const tree = makeTree(join(site.root, 'umask-tree'), { 'etc/umask': 'x\n' }, false);
  chmodSync(site.root, 0o755);
  execFileSync('/usr/bin/chmod', ['-R', 'a+rX', tree]);
  const result = await runAs(OWNER, ['import', `dir:${tree}`, '--tag', 'umask:1'], { umask: '077' });
  expect(result.stderr).toMatch(/^imported umask:1/);
  const unreadable = storeListing().filter((line) => !(parseInt(line.split(' ')[1], 8) & 0o004));
  expect(unreadable).toEqual([]);
  const listed = await runAs(BOB, ['images']);
  expect(listed.stdout).toMatch(/^umask:1 /m);
});

test('a user imports a file only they can read into ~USER/, as the store owner, reusing stored layers, and runs a job from ~/NAME:TAG', async () => {
  const result = await runAs(ALICE, ['import', `oci-archive:${archive}:rich`, '--tag', 'rich:1']);
  expect(result.stderr).toMatch(new RegExp(`imported ~${ALICE}/rich:1 \\(sha256:[0-9a-f]{64}\\) from oci-archive:.*: 3 layers \\(0 already stored\\)`));
  expect(result.code).toBe(0);
  const digest = result.stdout.trim();
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(storeListing().filter((line) => !line.startsWith(`${OWNER} `))).toEqual([]);
  // The tag is in her namespace only; the site's names are untouched.
  expect(existsSync(join(site.store, 'tags', 'rich'))).toBe(false);
  expect((await runAs(ALICE, ['resolve', '~/rich:1'])).stdout.trim()).toBe(digest);
  expect((await runAs(BOB, ['resolve', `~${ALICE}/rich:1`])).stdout.trim()).toBe(digest);
  expect((await runAs(BOB, ['resolve', '~/rich:1'])).stderr).toMatch(/unknown image "~\/rich:1"/);

  // Importing the same image again stores nothing new.
  const again = await runAs(ALICE, ['import', `oci-archive:${archive}:rich`, '--tag', 'rich:2']);
  expect(again.stderr).toMatch(/3 layers \(3 already stored\)/);
  // Her choice of layer format reaches the owner's writer: squashfs layers next to the site's
  // default erofs ones, the owner's too.
  expect(JSON.parse((await runAs(ALICE, ['inspect', '~/rich:1'])).stdout).layers.map((layer: { format: string }) => layer.format)).toEqual(['erofs', 'erofs', 'erofs']);
  const squashfs = await runAs(ALICE, ['import', `oci-archive:${archive}:rich`, '--tag', 'rich:squashfs', '--compression', 'zstd']);
  expect(squashfs.stderr).toMatch(/3 layers \(0 already stored\)/);
  expect(JSON.parse((await runAs(ALICE, ['inspect', '~/rich:squashfs'])).stdout).layers.map((layer: { format: string }) => layer.format)).toEqual(['squashfs', 'squashfs', 'squashfs']);
  expect(storeListing().filter((line) => !line.startsWith(`${OWNER} `))).toEqual([]);

  // A job of hers with ~/rich:1 gets exactly what umoci unpacks.
  const bundle = join(site.root, 'bundle');
  execFileSync('/usr/bin/umoci', ['unpack', '--image', `${join(site.root, 'layout')}:rich-gzip`, bundle], { stdio: ['ignore', 'ignore', 'pipe'] });
  const alice = ids(ALICE);
  const prolog = await site.run(['prolog', '--job', 'perm2', '--uid', String(alice.uid), '--gid', String(alice.gid), '--image', '~/rich:1']);
  expect(prolog.stderr).toBe('');
  try {
    expect(compareTrees(join(bundle, 'rootfs'), join(site.runtime, 'jobs/perm2/rootfs'), { skip: [...PER_JOB_PATHS, 'home'] })).toBeUndefined();
  } finally {
    expect((await site.run(['epilog', '--job', 'perm2'])).code).toBe(0);
  }
  // Bob's job with ~/rich:1 fails as his own mistake, not as a node fault.
  const bob = ids(BOB);
  const bobs = await site.run(['prolog', '--job', 'perm3', '--uid', String(bob.uid), '--gid', String(bob.gid), '--image', '~/rich:1']);
  expect(bobs.code).toBe(0);
  expect(readFileSync(join(site.runtime, 'jobs/perm3/error'), 'utf8')).toMatch(/unknown image "~\/rich:1"/);
  expect((await site.run(['epilog', '--job', 'perm3'])).code).toBe(0);
});

test("docker:// with the user's own credentials: read as the user, tagged under their namespace by the registry's name", async () => {
  const registry = await startRegistry(join(site.root, 'registry'), { kind: 'htpasswd', users: { alice: 'wonderland' } });
  try {
    await push(`oci:${join(site.root, 'layout')}:rich`, `docker://${registry.host}/private/img:1`, ['--dest-creds', 'alice:wonderland']);
    // Her credentials are hers alone: the store owner could not have read them.
    const auth = join(site.root, 'alice', 'auth.json');
    writeFileSync(auth, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }), { mode: 0o600 });
    execFileSync('/usr/bin/chown', [`${ALICE}:`, auth]);
    const result = await runAs(ALICE, ['import', `docker://${registry.host}/private/img:1`], { env: { REGISTRY_AUTH_FILE: auth } });
    expect(result.stderr).toMatch(new RegExp(`imported ~${ALICE}/${registry.host}/private/img:1 \\(sha256:[0-9a-f]{64}\\) from docker://`));
    expect(result.code).toBe(0);
    const anonymous = await runAs(BOB, ['import', `docker://${registry.host}/private/img:1`]);
    expect(anonymous.stderr).toMatch(/401|credentials|authentication/i);
  } finally {
    await registry.stop();
  }
});

test("a user's dir: import is read as the user and lands on top of a site image", async () => {
  const tree = join(site.root, 'alice', 'tree');
  makeTree(tree, { 'opt/tool': 'alice tool\n' }, false);
  execFileSync('/usr/bin/chown', ['-R', `${ALICE}:`, tree]);
  chmodSync(tree, 0o700);
  const result = await runAs(ALICE, ['import', `dir:${tree}`, '--tag', '~/tool:1', '--base', 'base:1']);
  expect(result.stderr).toMatch(new RegExp(`^imported ~${ALICE}/tool:1: 2 layers`));
  const inspect = JSON.parse((await runAs(BOB, ['inspect', `~${ALICE}/tool:1`])).stdout);
  expect(inspect.layers).toHaveLength(2);
});

test("a user can write nothing outside their namespace, and the store stays as it was", async () => {
  const listing = storeListing();
  const refusals: [string[], RegExp][] = [
    [['tag', 'base:1', `~${BOB}/stolen:1`], new RegExp(`you \\(${ALICE}\\) can only write tags in your own namespace ~${ALICE}/, not in ~${BOB}/`)],
    [['rm', `~${BOB}/anything:1`], /can only write tags in your own namespace/],
    [['rm', 'base:1'], new RegExp(`there is no image ~${ALICE}/base:1`)],
    [['gc'], new RegExp(`only the store's owner \\(${OWNER}\\) or root can run strata gc`)],
  ];
  for (const [args, message] of refusals) {
    const result = await runAs(ALICE, args);
    expect({ args, stderr: result.stderr, failed: result.code !== 0 }).toEqual({ args, stderr: expect.stringMatching(message), failed: true });
  }
  expect(storeListing()).toEqual(listing);
  // Her own tags she can move and remove.
  expect((await runAs(ALICE, ['tag', '~/rich:1', 'rich:latest'])).stderr).toMatch(new RegExp(`tagged ~${ALICE}/rich:latest`));
  expect((await runAs(ALICE, ['rm', '~/rich:latest', 'rich:2'])).code).toBe(0);
  expect(existsSync(join(site.store, 'tags', `~${ALICE}`, 'rich', '@2'))).toBe(false);
});

test('without user imports, a user gets one line saying who owns the store and what to do', async () => {
  const config = readFileSync(site.configPath, 'utf8');
  writeFileSync(site.configPath, config.replace('user_imports: true', 'user_imports: false'));
  try {
    const listing = storeListing();
    const result = await runAs(ALICE, ['import', `oci-archive:${archive}:rich`, '--tag', 'rich:3']);
    expect(result.stderr).toBe(`strata: you (${ALICE}) cannot write the image store ${site.store}: it belongs to ${OWNER}; ask an admin to import the image; a site can let users import into their own ~USER/ namespace (import.user_imports in strata.yaml)\n`);
    expect(result.code).not.toBe(0);
    expect(storeListing()).toEqual(listing);
  } finally {
    writeFileSync(site.configPath, config);
  }
});

test('import.user_quota: an import that would go over is refused before any download; layers of site images are free', async () => {
  const config = readFileSync(site.configPath, 'utf8');
  writeFileSync(site.configPath, config.replace('user_imports: true', 'user_imports: true\n  user_quota: 1K'));
  try {
    const listing = storeListing();
    // Alice's rich layers are in the store, but not in any site image: Bob would be charged for them.
    const over = await runAs(BOB, ['import', `oci:${join(site.root, 'layout')}:rich`, '--tag', 'rich:1']);
    expect(over.stderr).toMatch(new RegExp(`^strata: your images \\(~${BOB}/\\) would take [\\d.]+[KM]iB of the store, more than your quota of 1\\.0KiB; remove some of yours with \`strata rm ~/NAME:TAG\``));
    expect(over.code).not.toBe(0);
    expect(storeListing()).toEqual(listing);
    // A layer only a site image uses costs nothing: an image on top of base:1 fits while it is small.
    const tree = join(site.root, 'bob-tree');
    makeTree(tree, { 'etc/bob': 'b\n' }, false);
    execFileSync('/usr/bin/chmod', ['-R', 'a+rX', tree]);
    expect((await runAs(BOB, ['import', `dir:${tree}`, '--tag', 'small:1', '--base', 'base:1'])).code).toBe(0);
    // What their images take, and of what: shown to them by strata images.
    const listed = await runAs(BOB, ['images']);
    expect(listed.stdout).toMatch(new RegExp(`^~${BOB}/small:1 `, 'm'));
    expect(listed.stderr).toMatch(new RegExp(`^your images \\(~${BOB}/\\) take [\\d.]+KiB of the store of your quota of 1\\.0KiB\n$`));
  } finally {
    writeFileSync(site.configPath, config);
  }
});

test('without the sudoers rule, the error names the rule to install', async () => {
  rmSync(SUDOERS);
  try {
    const result = await runAs(ALICE, ['tag', 'base:1', 'x:1']);
    expect(result.stderr).toMatch(new RegExp(`sudo did not run strata's store writer as ${OWNER}.*ALL ALL=\\(${OWNER}\\) NOPASSWD: ${STRATA} _store-write`));
    expect(result.code).not.toBe(0);
  } finally {
    writeFileSync(SUDOERS, `Defaults env_keep += "STRATA_CONFIG"\nALL ALL=(${OWNER}) NOPASSWD: ${STRATA} _store-write\n`, { mode: 0o440 });
  }
});

test('strata verify names every file a node or a user would be refused, with the fix', async () => {
  const blob = join(site.store, 'blobs/sha256', readdirSync(join(site.store, 'blobs/sha256'))[0]);
  const tag = join(site.store, 'tags/base/@1');
  const alice = ids(ALICE);
  const owner = ids(OWNER);
  chownSync(blob, alice.uid, alice.gid);
  chmodSync(tag, 0o600);
  try {
    const result = await site.run(['verify']);
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n').filter(Boolean).sort()).toEqual([
      `${blob}: owned by uid ${alice.uid}, not by the store's owner (uid ${owner.uid}); fix: chown ${owner.uid} '${blob}'`,
      `${tag}: mode 0600 keeps users out; fix: chmod a+r '${tag}'`,
    ].sort());
  } finally {
    chownSync(blob, owner.uid, owner.gid);
    chmodSync(tag, 0o644);
  }
  expect((await site.run(['verify'])).code).toBe(0);
});

/**
 * Talk to the writer directly through sudo, as a hostile user would: a request of our making,
 * then, for each stream the writer opens, the bytes `answer` gives.
 */
function writerAs(user: string, first: Buffer, answer: (stream: number) => Buffer[] = () => []): Promise<RunOutput> {
  const { uid, gid } = ids(user);
  const child = spawn('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', '/usr/bin/sudo', '-n', '-u', OWNER, '--', STRATA, '_store-write'], {
    cwd: '/', env: site.env, stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => undefined);
  child.stdin.write(first);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk;
    for (const match of chunk.toString().matchAll(/"stream":(\d+)/g)) for (const frame of answer(Number(match[1]))) child.stdin.write(frame);
  });
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

test('a hand-made request cannot publish bytes under a diff_id they do not hash to, nor write another namespace', async () => {
  const listing = storeListing();
  const request = (body: object) => encodeFrame('R', 0, Buffer.from(JSON.stringify(body)));
  // A config claiming the busybox layer's diff_id for different bytes: if accepted, every later
  // import of the real layer would reuse the fake one.
  const real = busyboxLayer();
  const fake = layerTar([{ name: 'etc/passwd', content: 'root::0:0::/:/bin/sh\n' }]);
  const { createHash } = await import('node:crypto');
  const diffId = `sha256:${createHash('sha256').update(real).digest('hex')}`;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] }, config: {} }));
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const poisoned = await writerAs(
    ALICE,
    request({ op: 'import', sourceText: 'oci:/x', description: 'hand-made', tag: 'evil:1', image: { config: config.toString('base64'), configDigest, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar' }] } }),
    (stream) => [encodeFrame('D', stream, fake), encodeFrame('E', stream)],
  );
  expect(poisoned.stderr).toMatch(/digest mismatch|does not match/);
  expect(poisoned.code).not.toBe(0);
  expect(existsSync(join(site.store, 'diffids/sha256', diffId.slice(7)))).toBe(false);

  const elsewhere = await writerAs(ALICE, request({ op: 'tag', source: 'base:1', target: '~strata-bob/evil:1' }));
  expect(elsewhere.stderr).toMatch(/can only write tags in your own namespace/);
  const garbage = await writerAs(ALICE, Buffer.from('this is not a frame at all'));
  expect(garbage.stderr).toMatch(/the store write was cut off: unknown frame type/);

  const after = storeListing().filter((line) => !line.includes(' tmp'));
  expect(after).toEqual(listing.filter((line) => !line.includes(' tmp')));
  expect(readdirSync(join(site.store, 'tmp'))).toEqual([]);
  expect(statSync(join(site.store, 'tags')).uid).toBe(ids(OWNER).uid);
});

test("a user's import killed mid-layer: the owner's writer stops too, nothing is published, the next import cleans up", async () => {
  const big = join(site.root, 'big.bin');
  execFileSync('/usr/bin/dd', ['if=/dev/urandom', `of=${big}`, 'bs=1M', 'count=160', 'status=none']);
  const layout = join(site.root, 'big-layout');
  writeLayout(layout, [{ ref: 'big', layers: [{ compression: 'none', tar: layerTar([{ name: 'data/big.bin', fromFile: big }]) }] }]);
  rmSync(big);
  execFileSync('/usr/bin/chown', ['-R', `${ALICE}:`, layout]);
  const listing = storeListing().filter((line) => !line.includes(' tmp'));

  const { uid, gid } = ids(ALICE);
  const child = spawn('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', process.execPath, STRATA, 'import', `oci:${layout}:big`, '--tag', 'big:1'], { cwd: '/', env: site.env, stdio: 'ignore' });
  const tmp = join(site.store, 'tmp');
  const writing = () => existsSync(tmp) && readdirSync(tmp).some((name) => name.startsWith('layer') && statSync(join(tmp, name)).size > 0);
  for (let i = 0; i < 200 && !writing(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(writing()).toBe(true);
  child.kill('SIGKILL');
  const writers = () => spawnSync('/usr/bin/pgrep', ['-u', OWNER, '-f', '_store-write']).stdout.toString().trim();
  for (let i = 0; i < 200 && writers(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(writers()).toBe('');
  expect(storeListing().filter((line) => !line.includes(' tmp'))).toEqual(listing);

  const next = await runAs(ALICE, ['import', `oci-archive:${archive}:rich`, '--tag', 'rich:4']);
  expect(next.code).toBe(0);
  expect(readdirSync(tmp)).toEqual([]);
  const verify = await site.run(['verify']);
  expect({ code: verify.code, problems: verify.stdout }).toEqual({ code: 0, problems: '' });
});

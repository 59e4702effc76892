// Import on first use (issue 16): `strata resolve` with a registry image in Pyxis's syntax, as the
// SPANK plugin runs it at submit time, against a real registry with token auth, real user accounts
// and the real sudo rule of user imports. The image lands in the user's own ~USER/ namespace, is
// imported once when two submits race, and is refused with a clear line where the site says no.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markerImage, writeLayout } from '../helpers/oci.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { push, startRegistry, startTokenServer, type Registry, type TokenServer } from '../helpers/registry.js';
import { makeSite, makeTree, STRATA, type RunOutput, type Site } from '../helpers/site.js';
import { testUsers } from '../helpers/test-users.js';

const OWNER = 'strata-store';
const ALICE = 'strata-alice';
const BOB = 'strata-bob';
const SUDOERS = '/etc/sudoers.d/strata-test-import-on-demand';
const users = testUsers();
const USERS = { alice: 'wonderland', robot: 'beep' };

let site: Site;
let off: Site;
let before: NodeState;
let tokens: TokenServer;
let registry: Registry;
let reg: string;

const ids = (name: string) => ({ uid: Number(execFileSync('/usr/bin/id', ['-u', name])), gid: Number(execFileSync('/usr/bin/id', ['-g', name])) });
const home = (user: string) => join(site.root, `home-${user}`);

/** `strata resolve` as `user`, as the SPANK plugin runs it: the user's HOME, stdin /dev/null, output to pipes. */
function resolveAs(user: string, ref: string, options: { site?: Site; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunOutput> {
  const { uid, gid } = ids(user);
  const env = { ...(options.site ?? site).env, HOME: home(user), ...options.env };
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', process.execPath, STRATA, 'resolve', ref], { cwd: options.cwd ?? '/', env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const tagFile = (name: string, tag: string) => join(site.store, 'tags', name, `@${tag}`);
const importsIn = (output: RunOutput) => output.stderr.split('\n').filter((line) => line.startsWith(`imported ~`)).length;

beforeAll(async () => {
  before = nodeState();
  users.ensure(OWNER, { system: true });
  users.ensure(ALICE);
  users.ensure(BOB);
  site = makeSite('on-demand', 'import:\n  user_imports: true\n  on_demand: true\n');
  off = makeSite('on-demand-off', 'import:\n  user_imports: true\n');
  for (const s of [site, off]) {
    const owner = ids(OWNER);
    chownSync(s.store, owner.uid, owner.gid);
    writeFileSync(s.logFile, '');
    chownSync(s.logFile, owner.uid, owner.gid);
  }
  // A store with a site image in it, as on any site (an empty store reads as "not mounted").
  const tree = makeTree(join(site.root, 'base-tree'), { 'etc/site-release': 'site 1\n' }, false);
  for (const s of [site, off]) expect((await s.run(['import', `dir:${tree}`, '--tag', 'base:1'])).code).toBe(0);
  writeFileSync(SUDOERS, `Defaults env_keep += "STRATA_CONFIG"\nALL ALL=(${OWNER}) NOPASSWD: ${STRATA} _store-write\n`, { mode: 0o440 });
  expect(spawnSync('/usr/sbin/visudo', ['-c', '-f', SUDOERS]).status).toBe(0);
  for (const user of [ALICE, BOB]) {
    // enroot's credentials file, as a Pyxis user has it (the writer, another account, never reads it).
    mkdirSync(join(home(user), '.config/enroot'), { recursive: true, mode: 0o700 });
    writeFileSync(join(home(user), '.config/enroot/.credentials'), 'machine 127.0.0.1 login alice password wonderland\nmachine 127.0.0.1 login robot password beep\n', { mode: 0o600 });
    execFileSync('/usr/bin/chown', ['-R', `${user}:`, home(user)]);
    execFileSync('/usr/bin/chmod', ['0700', home(user)]);
  }
  const layout = join(site.root, 'layout');
  writeLayout(layout, ['first', 'race', 'moving-1', 'moving-2', 'big'].map(markerImage));
  tokens = await startTokenServer(site.root, USERS);
  registry = await startRegistry(join(site.root, 'reg'), { kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certPath: tokens.certPath });
  reg = registry.host;
  for (const name of ['first', 'race', 'big']) await push(`oci:${layout}:${name}`, `docker://${reg}/team/${name}:1`, ['--dest-creds', 'alice:wonderland']);
  await push(`oci:${layout}:moving-1`, `docker://${reg}/team/moving:latest`, ['--dest-creds', 'alice:wonderland']);
  // Kept for the recheck test: the tag moves to this one.
  process.env.STRATA_TEST_LAYOUT = layout;
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  await tokens?.stop();
  rmSync(SUDOERS, { force: true });
  for (const user of [ALICE, BOB]) rmSync(`/tmp/strata-${ids(user).uid}`, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
  site.remove();
  off.remove();
  users.removeMade();
});

test("first use imports into the user's own namespace, with their enroot credentials; the second use finds it; another user does not", async () => {
  const ref = `${reg}#team/first:1`;
  const first = await resolveAs(ALICE, ref);
  expect(first.code).toBe(0);
  const digest = first.stdout.trim();
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(first.stderr).toMatch(new RegExp(`^strata: importing ${ref.replace(/[.#]/g, '\\$&')} \\(docker://${reg.replace(/\./g, '\\.')}/team/first:1\\) into ~${ALICE}/${reg.replace(/\./g, '\\.')}/team/first:1\n`));
  expect(importsIn(first)).toBe(1);
  expect(tokens.requests).toContainEqual({ scope: 'repository:team/first:pull', user: 'alice' });
  // In her namespace, not the site's.
  expect(existsSync(tagFile(`~${ALICE}/${reg}/team/first`, '1'))).toBe(true);
  expect(existsSync(tagFile(`${reg}/team/first`, '1'))).toBe(false);

  // The prolog takes the same reference (without a pin): the job's user's own import, nothing fetched.
  const plan = await site.run(['prolog', '--job', 'pyx1', '--uid', String(ids(ALICE).uid), '--gid', String(ids(ALICE).gid), '--image', ref, '--dry-run']);
  expect({ code: plan.code, stderr: plan.stderr }).toEqual({ code: 0, stderr: '' });
  expect(plan.stdout).toContain(digest);

  tokens.requests.length = 0;
  const again = await resolveAs(ALICE, `docker://${reg}/team/first:1`);
  expect({ code: again.code, stdout: again.stdout.trim(), stderr: again.stderr }).toEqual({ code: 0, stdout: digest, stderr: '' });
  expect(tokens.requests).toEqual([]); // pinned from the store: the registry is not asked

  // USER@ picks the other login of her credentials file.
  const bob = await resolveAs(BOB, `robot@${ref}`);
  expect(bob.code).toBe(0);
  expect(tokens.requests).toContainEqual({ scope: 'repository:team/first:pull', user: 'robot' });
  expect(existsSync(tagFile(`~${BOB}/${reg}/team/first`, '1'))).toBe(true);
}, 120_000);

test('two resolves of the same missing image at once import it once; the second waits and pins the same digest', async () => {
  const ref = `${reg}#team/race:1`;
  const [a, b] = await Promise.all([resolveAs(ALICE, ref), resolveAs(ALICE, ref)]);
  expect([a.code, b.code]).toEqual([0, 0]);
  expect(a.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(b.stdout.trim()).toBe(a.stdout.trim());
  expect(importsIn(a) + importsIn(b)).toBe(1);
}, 120_000);

test('off (import.on_demand: false): one line saying the image is not there and how to get it', async () => {
  const result = await resolveAs(ALICE, `${reg}#team/first:1`, { site: off });
  expect(result.code).toBe(2);
  expect(result.stderr.split('\n')).toHaveLength(2);
  expect(result.stderr).toContain(`${reg}#team/first:1`);
  expect(result.stderr).toContain(
    `; this site does not import images on first use; ask your admin to import it (strata import docker://${reg}/team/first:1 --tag ${reg}/team/first:1) or import it yourself: strata import docker://${reg}/team/first:1 --tag ~/${reg}/team/first:1\n`,
  );
});

test('a login without a password in either credentials file is refused before anything is fetched, naming the file', async () => {
  const result = await resolveAs(ALICE, `carol@${reg}#team/big:1`);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(new RegExp(`^strata: importing .*\nstrata: no password for carol@${reg.replace(/\./g, '\\.')}: neither ${home(ALICE)}/\\.config/enroot/\\.credentials nor ~/\\.docker/config\\.json has one; add "machine 127\\.0\\.0\\.1 login carol password \\.\\.\\." to`));
  expect(existsSync(tagFile(`~${ALICE}/${reg}/team/big`, '1'))).toBe(false);
});

test('as root (the PBS queuejob hook), a missing image is not imported into the site names', async () => {
  const result = await site.run(['resolve', `${reg}#team/big:1`]);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/^strata: image .* is not in the store, and strata does not import on first use as root \(it would become a site image\); an admin imports it with `strata import docker:\/\//);
});

test('a moved tag is used as stored until the user asks for a recheck (STRATA_IMPORT_RECHECK=1)', async () => {
  const ref = `${reg}#team/moving`;
  const first = (await resolveAs(ALICE, ref)).stdout.trim();
  expect(first).toMatch(/^sha256:/);
  await push(`oci:${process.env.STRATA_TEST_LAYOUT}:moving-2`, `docker://${reg}/team/moving:latest`, ['--dest-creds', 'alice:wonderland']);
  expect((await resolveAs(ALICE, ref)).stdout.trim()).toBe(first);
  const rechecked = await resolveAs(ALICE, ref, { env: { STRATA_IMPORT_RECHECK: '1' } });
  expect(rechecked.code).toBe(0);
  expect(rechecked.stdout.trim()).not.toBe(first);
  expect(importsIn(rechecked)).toBe(1);
  // Unchanged since: a recheck asks the registry and imports nothing.
  const same = await resolveAs(ALICE, ref, { env: { STRATA_IMPORT_RECHECK: '1' } });
  expect({ stdout: same.stdout.trim(), stderr: same.stderr }).toEqual({ stdout: rechecked.stdout.trim(), stderr: '' });
  // As root (the PBS hook), a recheck of a site image cannot import: the stored image stands.
  expect((await site.run(['tag', rechecked.stdout.trim(), `${reg}/team/moving:latest`])).code).toBe(0);
  const asRoot = await site.run(['resolve', '--recheck', `${reg}#team/moving`]);
  expect({ code: asRoot.code, stdout: asRoot.stdout.trim(), stderr: asRoot.stderr }).toEqual({ code: 0, stdout: rechecked.stdout.trim(), stderr: '' });
}, 120_000);

test("progress goes to the submitter's terminal (the fd the SPANK plugin hands over), its messages to the plugin's pipe", async () => {
  const { uid, gid } = ids(ALICE);
  const err = join(home(ALICE), 'stderr.txt');
  // As the plugin runs it: stderr a pipe (here a file), the terminal on fd 3 (here script(1)'s pty).
  // Asynchronously: the token server runs in this process.
  const command = `exec 3>&2; STRATA_PROGRESS_FD=3 exec ${process.execPath} ${STRATA} resolve '${reg}#team/big:1' 2>${err}`;
  const child = spawn('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--', '/usr/bin/script', '-qefc', command, '/dev/null'], {
    env: { ...site.env, HOME: home(ALICE) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let terminal = '';
  child.stdout.on('data', (chunk) => (terminal += chunk));
  expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0);
  const lines = terminal.split(/\r?\n|\r/).map((line) => line.replace(/\x1b\[K/g, '')).filter(Boolean);
  expect(lines).toContainEqual(`strata: importing ${reg}#team/big:1 (docker://${reg}/team/big:1) into ~${ALICE}/${reg}/team/big:1`);
  expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^strata: imported ${reg.replace(/\./g, '\\.')}#team/big:1 as ~${ALICE}/.*\\(sha256:[0-9a-f]{64}\\)$`)));
  expect(lines).toContainEqual(expect.stringMatching(/^sha256:[0-9a-f]{64}$/)); // stdout is the terminal here
  const messages = readFileSync(err, 'utf8');
  expect(messages).toMatch(/^strata: importing /);
  expect(messages).not.toMatch(/\x1b|\r/); // no progress drawing in the pipe
});

test("a squashfs file (Pyxis's PATH form) is imported once into ~USER/sqsh/, read as the user; anything else is refused", async () => {
  const dir = home(ALICE);
  const tree = makeTree(join(site.root, 'sqsh-tree'), { 'etc/from-sqsh': 'yes\n' }, false);
  execFileSync('/usr/bin/mksquashfs', [tree, join(dir, 'img.sqsh'), '-noappend', '-quiet', '-all-root']);
  writeFileSync(join(dir, 'not.sqsh'), 'hello');
  execFileSync('/usr/bin/chown', [`${ALICE}:`, join(dir, 'img.sqsh'), join(dir, 'not.sqsh')]);
  execFileSync('/usr/bin/chmod', ['0600', join(dir, 'img.sqsh')]); // only she can read it
  const first = await resolveAs(ALICE, './img.sqsh', { cwd: dir });
  expect(first.stderr).toMatch(new RegExp(`^strata: importing ./img.sqsh into ~${ALICE}/sqsh/[0-9a-f]{16}:[0-9a-f]{16}\nimported ~${ALICE}/sqsh/`));
  expect(first.code).toBe(0);
  const digest = first.stdout.trim();
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(await resolveAs(ALICE, join(dir, 'img.sqsh'))).toMatchObject({ code: 0, stdout: `${digest}\n`, stderr: '' });
  const plan = await site.run(['prolog', '--job', 'sqsh1', '--uid', String(ids(ALICE).uid), '--gid', String(ids(ALICE).gid), '--image', './img.sqsh', '--image-digest', digest, '--dry-run']);
  expect(plan.code).toBe(0);
  const notSquashfs = await resolveAs(ALICE, './not.sqsh', { cwd: dir });
  expect({ code: notSquashfs.code, stderr: notSquashfs.stderr }).toEqual({ code: 2, stderr: `strata: ${dir}/not.sqsh is not a squashfs file; give a squashfs image (as enroot import or mksquashfs make), or a NAME:TAG from \`strata images\`\n` });
  const missing = await resolveAs(ALICE, './nope.sqsh', { cwd: dir });
  expect(missing.stderr).toBe(`strata: squashfs file ${dir}/nope.sqsh cannot be read: it does not exist; check the path (a relative one starts from the directory you submit from)\n`);
  // bob cannot read her file: refused as unreadable, nothing imported for him
  const bob = await resolveAs(BOB, join(dir, 'img.sqsh'));
  expect(bob.code).toBe(2);
  expect(bob.stderr).toMatch(/cannot be read: EACCES/);
}, 120_000);

// Security properties of a node, as tests: what a job's user (or another user on the node) can and
// cannot do, and what strata refuses to trust. Runs as root; "another user" is nobody (65534) via
// setpriv, the job's user is uid 1000.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importSmallImage } from '../helpers/images.js';
import { jobsOn } from '../helpers/jobs.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { makeSite, makeTree, type Site } from '../helpers/site.js';

let site: Site;
let before: NodeState;
const JOB_UID = 1000;
const { jobDir, rootfs, prolog, epilog, epilogAll, errorOf } = jobsOn(() => site, { uid: JOB_UID });
const as = (uid: number, script: string) => spawnSync('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '/bin/sh', '-c', script], { encoding: 'utf8' });
const layerFiles = () => readdirSync(join(site.store, 'layers/sha256')).map((name) => join(site.store, 'layers/sha256', name));

beforeAll(async () => {
  before = nodeState();
  site = makeSite('security');
  // An image with a setuid-root program that prints its effective uid.
  const tree = makeTree(join(site.root, 'suid-tree'), { 'tmp/.keep': '' });
  chmodSync(join(tree, 'tmp'), 0o1777);
  writeFileSync(join(site.root, 'euid.c'), '#include <stdio.h>\n#include <unistd.h>\nint main(void){printf("euid=%u\\n",(unsigned)geteuid());return 0;}\n');
  execFileSync('cc', ['-static', '-O2', '-o', join(tree, 'bin/euid'), join(site.root, 'euid.c')]);
  chmodSync(join(tree, 'bin/euid'), 0o4755);
  const imported = await site.run(['import', `dir:${tree}`, '--tag', 'suid:1']);
  if (imported.code !== 0) throw new Error(imported.stderr);
}, 120_000);

afterEach(async () => {
  await epilogAll();
  expectNodeStateUnchanged(before);
});

afterAll(() => site.remove());

test('image mounts are ro,nosuid,nodev; every mount in the rootfs is nosuid (and nodev but /dev)', async () => {
  expect((await prolog('1', 'suid:1', ['--mounts', '/tmp:/data'])).code).toBe(0);
  const mounts = execFileSync('/usr/bin/findmnt', ['-rn', '-o', 'TARGET,FSTYPE,OPTIONS'], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith(`${site.runtime}/`));
  const layers = mounts.filter((line) => line.includes(`${site.runtime}/l/`));
  expect(layers.length).toBeGreaterThan(0);
  // The default layer format: uncompressed erofs.
  for (const line of layers) expect(line).toMatch(/ erofs ro,nosuid,nodev/);
  const inRootfs = mounts.filter((line) => line.startsWith(rootfs('1')) && !/^\/(proc|sys|dev)\/\S/.test(line.slice(rootfs('1').length)));
  expect(inRootfs.length).toBeGreaterThanOrEqual(5);
  for (const line of inRootfs) {
    expect(line).toMatch(/[ ,]nosuid[ ,]/);
    if (!line.startsWith(`${rootfs('1')}/dev `)) expect(line).toMatch(/[ ,]nodev([ ,]|$)/);
  }
});

test('a setuid-root binary in the image runs with the user\'s uid', async () => {
  expect((await prolog('2', 'suid:1')).code).toBe(0);
  const run = spawnSync('/usr/sbin/chroot', [`--userspec=${JOB_UID}:${JOB_UID}`, rootfs('2'), '/bin/euid'], { encoding: 'utf8' });
  expect(run.stdout).toBe(`euid=${JOB_UID}\n`);
});

test('another user cannot read or write a job\'s rootfs or upper; the job\'s user can', async () => {
  expect((await prolog('3', 'suid:1')).code).toBe(0);
  expect(as(JOB_UID, `echo secret > ${rootfs('3')}/tmp/mine && ls ${rootfs('3')}/tmp`).stdout).toBe('mine\n');
  for (const script of [`ls ${rootfs('3')}`, `cat ${rootfs('3')}/tmp/mine`, `touch ${rootfs('3')}/tmp/planted`, `ls ${jobDir('3')}/upper/u`, `cat ${jobDir('3')}/upper/u/tmp/mine`]) {
    expect({ script, failed: as(65534, script).status !== 0 }).toEqual({ script, failed: true });
  }
  expect(existsSync(join(rootfs('3'), 'tmp/planted'))).toBe(false);
});

test('user mounts may not cover system or strata paths, nor bind what the user cannot read', async () => {
  const secret = join(site.root, 'private');
  mkdirSync(join(secret, 'inner'), { recursive: true, mode: 0o700 });
  chmodSync(secret, 0o700);
  chmodSync(join(secret, 'inner'), 0o755);
  writeFileSync(join(secret, 'inner/data'), 'root only by path\n');
  const own = join(site.root, 'own');
  mkdirSync(own, { recursive: true });
  chownSync(own, JOB_UID, JOB_UID);
  const cases: [string, RegExp][] = [
    [`${own}:/etc`, /would cover a system directory/],
    [`${own}:/var`, /would cover a system directory/],
    [`${site.runtime}/jobs:/x`, /inside strata's runtime dir/],
    [`${own}:${site.store}`, /would cover strata's image store/],
    [`${join(secret, 'inner')}:/data`, new RegExp(`you \\(uid ${JOB_UID}\\) cannot read`)],
  ];
  for (const [index, [spec, pattern]] of cases.entries()) {
    const job = `4${index}`;
    const result = await prolog(job, 'suid:1', ['--mounts', spec]);
    expect({ spec, code: result.code }).toEqual({ spec, code: 0 });
    const message = errorOf(job) || result.stderr;
    expect({ spec, message }).toEqual({ spec, message: expect.stringMatching(pattern) });
    expect(existsSync(join(rootfs(job), 'etc'))).toBe(false);
  }
  // A source the user can read works.
  expect((await prolog('49', 'suid:1', ['--mounts', `${own}:/data`])).code).toBe(0);
  expect(errorOf('49')).toBe('');
});

test('layer files not owned by the store owner, writable by others, or symlinks are refused', async () => {
  const earlier = new Set(layerFiles());
  await importSmallImage(site, 'plain:1');
  const [file] = layerFiles().filter((path) => !earlier.has(path));
  const tries: [string, () => void, () => void][] = [
    ['world-writable', () => chmodSync(file, 0o666), () => chmodSync(file, 0o444)],
    ['foreign owner', () => chownSync(file, JOB_UID, JOB_UID), () => chownSync(file, 0, 0)],
    ['symlink', () => { renameSync(file, `${file}.real`); symlinkSync(`${file}.real`, file); }, () => { rmSync(file); renameSync(`${file}.real`, file); }],
  ];
  for (const [index, [what, spoil, repair]] of tries.entries()) {
    const mode = readFileSync(file).length;
    spoil();
    try {
      const result = await prolog(`5${index}`, 'plain:1');
      expect({ what, code: result.code, error: errorOf(`5${index}`) }).toEqual({ what, code: 0, error: expect.stringMatching(/not safe to mount/) });
    } finally {
      repair();
    }
    expect(readFileSync(file).length).toBe(mode);
  }
  expect((await prolog('59', 'plain:1')).code).toBe(0);
  expect(errorOf('59')).toBe('');
});

test('a symlinked blob in the store is not followed', async () => {
  const digest = (await site.run(['resolve', 'plain:1'])).stdout.trim();
  const blob = join(site.store, 'blobs/sha256', digest.slice(7));
  copyFileSync(blob, `${blob}.real`);
  rmSync(blob);
  symlinkSync(`${blob}.real`, blob);
  try {
    expect((await prolog('60', 'plain:1')).code).toBe(0);
    expect(errorOf('60')).toMatch(/is a symbolic link; strata does not follow links in the store/);
  } finally {
    rmSync(blob);
    renameSync(`${blob}.real`, blob);
  }
});

test('symlinks planted in the runtime dir are not followed', async () => {
  const elsewhere = join(site.root, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  // A layer mount point that is a link: the layer is not mounted through it.
  const digest = (await site.run(['resolve', 'plain:1'])).stdout.trim();
  const manifest = JSON.parse(readFileSync(join(site.store, 'blobs/sha256', digest.slice(7)), 'utf8'));
  const layerDir = join(site.runtime, 'l', manifest.layers[0].digest.slice(7, 19));
  mkdirSync(join(site.runtime, 'l'), { recursive: true });
  symlinkSync(elsewhere, layerDir);
  const result = await prolog('61', 'plain:1');
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^strata: prolog: job 61: .* is not a directory/) });
  rmSync(layerDir);
  // A job directory that is a link: the epilog reads and deletes nothing through it.
  writeFileSync(join(elsewhere, 'journal'), `${JSON.stringify({ op: 'upper-dir', path: elsewhere, uid: 0, gid: 0 })}\n`);
  mkdirSync(join(site.runtime, 'jobs'), { recursive: true });
  symlinkSync(elsewhere, jobDir('62'));
  const end = await epilog('62');
  expect({ code: end.code, stderr: end.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^strata: epilog: job 62: .* is a symbolic link, which strata never creates and does not follow/) });
  expect(readdirSync(elsewhere)).toEqual(['journal']);
  const status = await site.run(['node', 'status', '--json']);
  expect(JSON.parse(status.stdout).stale).toEqual([expect.objectContaining({ kind: 'foreign-entry', path: jobDir('62') })]);
  rmSync(jobDir('62'));
  expect(existsSync(join(site.runtime, 'jobs/61'))).toBe(false);
});

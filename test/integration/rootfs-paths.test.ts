// Where a bind lands in a rootfs: container paths are resolved by the mount helper the way a
// process chrooted in the rootfs would see them (image symlinks resolve inside it, ".." stops at
// its root), missing components are created inside it, and every refusal is the job's error with
// a message naming the path. Real mounts on a tmpfs standing in for a job's rootfs.

import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindIntoRootfs } from '../../src/host/job-mounts.js';
import { MountHelper, type HelperReply } from '../../src/host/mount-helper.js';
import { bindError } from '../../src/runtime/job/bind-errors.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { REPO } from '../helpers/site.js';

let before: NodeState;
let work: string;
let root: string;
let sourceDir: string;
let sourceFile: string;
let helper: MountHelper;

const dirs = (...paths: string[]) => paths.forEach((path) => mkdirSync(join(root, path), { recursive: true }));
const link = (path: string, target: string) => symlinkSync(target, join(root, path));
const file = (path: string, content = '') => writeFileSync(join(root, path), content);
const mountPointOf = (id: number) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => Number(fields[0]) === id)?.[4];

/** A plain bind into the test rootfs as root, through the mount helper. */
const bindAsRoot = (source: string, target: string, create: boolean) =>
  bindIntoRootfs({ source, rootfs: root, target, uid: 0, gid: 0, readonly: false, recursive: false, keepDev: false, optional: false, create }, helper);

async function bindAt(target: string, { create = false, kind = 'dir' }: { create?: boolean; kind?: 'dir' | 'file' } = {}): Promise<HelperReply> {
  return bindAsRoot(kind === 'dir' ? sourceDir : sourceFile, target, create);
}

/** Bind, and return where the mount landed (unmounting it again). */
async function landsAt(target: string, options: { create?: boolean; kind?: 'dir' | 'file' } = {}): Promise<string> {
  const reply = await bindAt(target, options);
  if (!reply.ok) throw new Error(`${target}: ${reply.stage} ${reply.message}`);
  const at = mountPointOf(Number(reply.value))!;
  execFileSync('umount', [at]);
  return at;
}

async function refused(target: string, options: { create?: boolean; kind?: 'dir' | 'file' } = {}) {
  const reply = await bindAt(target, options);
  expect(reply.ok).toBe(false);
  const error = bindError({ source: sourceDir, target, readonly: false, optional: false, recursive: false }, reply, 1000);
  expect(error.kind).toBe('user');
  expect(error.code).toBe('E_BAD_MOUNT');
  expect(error.message).toContain(target);
  return error;
}

beforeAll(() => {
  before = nodeState();
  work = mkdtempSync(join(tmpdir(), 'strata-rootfs-paths-'));
  sourceDir = join(work, 'src');
  mkdirSync(sourceDir);
  sourceFile = join(work, 'src.txt');
  writeFileSync(sourceFile, 'source\n');
  helper = new MountHelper(join(REPO, 'dist/helper/strata-mount'));
});

beforeEach(() => {
  root = join(work, 'root');
  mkdirSync(root);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'rootfs-paths', root]);
  execFileSync('mount', ['--make-private', root]);
});

afterEach(() => {
  execFileSync('umount', ['--recursive', root]);
  rmSync(root, { recursive: true, force: true });
});

afterAll(async () => {
  await helper.close();
  rmSync(work, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
});

describe('existing paths', () => {
  test('a plain path resolves below the root; "." and duplicate slashes are ignored', async () => {
    dirs('a/b');
    expect(await landsAt('/a/b')).toBe(join(root, 'a/b'));
    expect(await landsAt('//a/./b/')).toBe(join(root, 'a/b'));
  });

  test('".." goes up, and never above the root', async () => {
    dirs('a/b', 'etc');
    expect(await landsAt('/a/b/..')).toBe(join(root, 'a'));
    expect(await landsAt('/../../../etc')).toBe(join(root, 'etc'));
  });
});

describe('symbolic links in the image', () => {
  test('an absolute link resolves inside the root, never on the host', async () => {
    dirs('etc');
    link('data', '/etc');
    expect(await landsAt('/data')).toBe(join(root, 'etc'));
  });

  test('an absolute link in the middle of the path restarts at the root', async () => {
    dirs('opt/real/x', 'a');
    link('a/lnk', '/opt/real');
    expect(await landsAt('/a/lnk/x')).toBe(join(root, 'opt/real/x'));
  });

  test('creating through a link to /etc writes in the image, not on the host', async () => {
    link('conf', '/etc');
    expect(await landsAt('/conf/strata-test-dir', { create: true })).toBe(join(root, 'etc/strata-test-dir'));
    expect(lstatSync('/etc/strata-test-dir', { throwIfNoEntry: false })).toBeUndefined();
  });

  test('a relative link is followed from the directory holding it; ".." beyond the root is clamped', async () => {
    dirs('a/b', 'target');
    link('a/rel', '../target');
    link('a/b/up', '../../../../../../target');
    expect(await landsAt('/a/rel')).toBe(join(root, 'target'));
    expect(await landsAt('/a/b/up')).toBe(join(root, 'target'));
  });

  test('a chain of links is followed', async () => {
    dirs('end');
    link('one', 'two');
    link('two', '/three');
    link('three', 'end');
    expect(await landsAt('/one')).toBe(join(root, 'end'));
  });

  test('a link loop, a link to itself and 41 links in a row are the job\'s errors naming the path', async () => {
    link('a', 'b');
    link('b', '/a');
    expect((await refused('/a/x', { create: true })).message).toContain('symbolic link');
    link('self', 'self');
    await refused('/self');
    dirs('end');
    for (let i = 0; i < 41; i++) link(`long${i}`, i === 40 ? 'end' : `long${i + 1}`);
    await refused('/long0');
    expect(await landsAt('/long1')).toBe(join(root, 'end'));
  });

  test('a magic link (/proc/self/root in the image) is not followed', async () => {
    link('escape', '/proc/self/root/etc');
    dirs('proc');
    await refused('/escape');
  });
});

describe('creating missing components', () => {
  test('a directory source: every missing component becomes a directory', async () => {
    expect(await landsAt('/new/deep/dir', { create: true })).toBe(join(root, 'new/deep/dir'));
    expect(lstatSync(join(root, 'new/deep/dir')).isDirectory()).toBe(true);
  });

  test('a file source: the parents become directories and the last an empty file', async () => {
    expect(await landsAt('/new/deep/file.txt', { create: true, kind: 'file' })).toBe(join(root, 'new/deep/file.txt'));
    expect(lstatSync(join(root, 'new/deep/file.txt')).isFile()).toBe(true);
    expect(readFileSync(join(root, 'new/deep/file.txt'), 'utf8')).toBe('');
  });

  test('an existing file is left as it is', async () => {
    dirs('etc');
    file('etc/resolv.conf', 'nameserver 10.0.0.1\n');
    expect(await landsAt('/etc/resolv.conf', { create: true, kind: 'file' })).toBe(join(root, 'etc/resolv.conf'));
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 10.0.0.1\n');
  });

  test('a dangling link is created where it points, inside the root', async () => {
    link('scratch', '/mnt/scratch');
    expect(await landsAt('/scratch', { create: true })).toBe(join(root, 'mnt/scratch'));
    expect(lstatSync(join(root, 'scratch')).isSymbolicLink()).toBe(true);
  });

  test('without create, a missing path is refused and creates nothing', async () => {
    dirs('a');
    await refused('/a/missing/x');
    expect(lstatSync(join(root, 'a/missing'), { throwIfNoEntry: false })).toBeUndefined();
  });

  test('a file in the middle of the path, or a link to one, is refused and left as it is', async () => {
    dirs('data');
    file('data/blob', 'x');
    link('lnk', '/data/blob');
    expect((await refused('/data/blob/x', { create: true })).message).toContain('not a directory');
    await refused('/lnk/sub', { create: true });
    expect(readFileSync(join(root, 'data/blob'), 'utf8')).toBe('x');
  });
});

describe('binds already in the rootfs', () => {
  test('an image link into a host directory bound into the container cannot make root create anything there', async () => {
    const host = join(work, 'host-bound');
    mkdirSync(host, { recursive: true });
    dirs('hostbind');
    const bound = await bindAsRoot(host, '/hostbind', false);
    expect(bound.ok).toBe(true);
    link('data', '/hostbind/made-by-root');
    const error = await refused('/data', { create: true });
    expect(error.message).toContain('another mount');
    expect(await refused('/hostbind/sub/dir', { create: true })).toBeDefined();
    expect(readdirSync(host)).toEqual([]);
  });
});

describe('types', () => {
  test('a directory onto a file of the image, a file onto a directory, a directory onto a device node: the job\'s errors', async () => {
    dirs('dir');
    file('plain', 'x');
    execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
    expect((await refused('/plain')).message).toContain('not a directory');
    expect((await refused('/dir', { kind: 'file' })).message).toContain('a file onto a directory');
    await refused('/null');
  });
});

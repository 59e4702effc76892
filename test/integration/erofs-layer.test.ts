// Uncompressed erofs layers (import.compression: none), written by strata's own writer: checked by
// erofs-utils' fsck.erofs and by the kernel, mounted as the prolog mounts them (the mount
// executor's `loop` request: backed by the file itself). The tree a job would see must be the
// source tree: every kind of entry, owners, modes, mtimes, xattrs, hard links, devices, sparse
// files, directories over several blocks, names sorting before '.', tails packed with their inode.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isStrataError, type StrataError } from '../../src/errors.js';
import { MountHelper } from '../../src/host/mount-helper.js';
import { buildLayerFile } from '../../src/store/import/layer-file.js';
import { mountRootfs, releaseUnusedLayers } from '../../src/runtime/layers/stack.js';
import { RuntimePaths } from '../../src/runtime/paths.js';
import { expectNodeStateUnchanged, nodeState, type NodeState } from '../helpers/node-state.js';
import { REPO } from '../helpers/site.js';
import { compareTrees } from '../helpers/tree-compare.js';
import { buildTar } from '../helpers/tar-build.js';

const MS_RDONLY_NOSUID_NODEV = 1 | 2 | 4;

let before: NodeState;
let work: string;
let source: string;
let helper: MountHelper;

const sh = (script: string, cwd = source) => execFileSync('/bin/sh', ['-euc', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

/** A tree with every kind of entry a layer holds, made as root. */
function makeSourceTree(dir: string): void {
  mkdirSync(dir, { mode: 0o755 });
  const put = (path: string, data: Buffer | string) => writeFileSync(join(dir, path), data);
  mkdirSync(join(dir, 'sizes'));
  for (const size of [0, 1, 100, 4031, 4032, 4095, 4096, 4097, 8192, 8292, 1_000_003]) put(`sizes/f${size}`, randomBytes(size));
  mkdirSync(join(dir, 'many'));
  // ~20 KiB of entries: a directory of several blocks, stored apart from its inode.
  for (let i = 0; i < 400; i++) put(`many/a-rather-long-file-name-to-fill-directory-blocks-${i}`, `${i}\n`);
  mkdirSync(join(dir, 'names'));
  for (const name of ['!bang', '#hash', '+plus', '-dash', '.hidden', 'Zed', 'zed', 'ünïcødé', 'x'.repeat(255), 'a\x01ctl']) put(`names/${name}`, name);
  symlinkSync('../sizes/f1', join(dir, 'names/short-link'));
  symlinkSync('y'.repeat(3000), join(dir, 'names/long-link'));
  symlinkSync('z'.repeat(4000), join(dir, 'names/longer-link'));
  sh(
    `ln sizes/f100 hard1 && ln sizes/f100 hard2
     mkdir modes && : > modes/setuid && chmod 4755 modes/setuid && : > modes/setgid && chmod 2711 modes/setgid
     mkdir modes/sticky && chmod 1777 modes/sticky && : > modes/none && chmod 000 modes/none
     : > owners && chown 70000:4000000 owners && mkdir owned && chown 1234:5678 owned
     mknod dev-char c 1 3 && mknod dev-block b 7 200 && mknod dev-big c 300 70000 && mkfifo fifo
     setfattr -n user.note -v hello sizes/f1 && setfattr -n trusted.overlay.opaque -v y owned
     setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\\0' x)" sizes/f4031
     setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= modes/setuid
     truncate -s 20M sparse && printf start | dd of=sparse conv=notrunc status=none && printf end | dd of=sparse bs=1 seek=15000000 conv=notrunc status=none
     touch -h -d '2001-02-03 04:05:06' names/short-link sizes/f0 many`,
    dir,
  );
}

/** Every entry's mtime (whole seconds: tar keeps no more), for the comparison compareTrees leaves out. */
function mtimes(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (path: string) => {
    const info = lstatSync(join(root, path));
    out.set(path, Math.floor(info.mtimeMs / 1000));
    if (info.isDirectory()) for (const name of readdirSync(join(root, path))) walk(join(path, name));
  };
  walk('.');
  return out;
}

async function buildError(tar: string, out: string): Promise<StrataError> {
  try {
    await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: out, compression: 'none' });
  } catch (error) {
    if (isStrataError(error)) return error;
    throw error;
  }
  throw new Error('expected the build to fail');
}

/** Mounts `image` as the prolog does, runs `check` on the tree, unmounts it again. */
async function mounted<T>(image: string, check: (root: string) => T): Promise<T> {
  const target = mkdtempSync(join(work, 'mnt-'));
  const result = await helper.run(['loop', image, target, 'erofs', MS_RDONLY_NOSUID_NODEV, '-', 0]);
  expect(result.reply).toMatchObject({ ok: true });
  try {
    // Backed by the file itself (Linux 6.12+): no loop device, mountinfo names the file.
    expect(execFileSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', target], { encoding: 'utf8' }).trim()).toBe(`${image} erofs`);
    return check(target);
  } finally {
    execFileSync('umount', [target]);
  }
}

beforeAll(() => {
  before = nodeState();
  work = mkdtempSync(join(tmpdir(), 'strata-erofs-layer-'));
  source = join(work, 'tree');
  makeSourceTree(source);
  helper = new MountHelper(join(REPO, 'dist/helper/strata-mount'));
});

afterAll(async () => {
  await helper.close();
  rmSync(work, { recursive: true, force: true });
  expectNodeStateUnchanged(before);
});

/** The source tree without its xattrs (what a GNU-format tar, which has no xattrs, holds). */
function withoutXattrs(): string {
  const copy = join(work, 'tree-no-xattrs');
  if (!existsSync(copy)) execFileSync('cp', ['-dR', '--sparse=always', '--preserve=mode,ownership,timestamps,links', source, copy]);
  return copy;
}

describe.each([
  ['a directory (strata import dir:)', () => ({ kind: 'dir' as const, path: source }), () => source],
  ['a GNU tar with old GNU sparse entries (no xattrs)', () => ({ kind: 'tar' as const, path: tarOf('--format=gnu', '--sparse') }), withoutXattrs],
  ['a POSIX tar with PAX 1.0 sparse entries', () => ({ kind: 'tar' as const, path: tarOf('--format=posix', '--xattrs', '--xattrs-include=*', '--sparse', '--sparse-version=1.0') }), () => source],
])('an erofs layer from %s', (_, layerSource, expectedTree) => {
  test('passes fsck.erofs, and the kernel shows exactly the source tree', async () => {
    const image = join(work, `${randomBytes(4).toString('hex')}.erofs`);
    const built = await buildLayerFile({ source: layerSource(), outputPath: image, compression: 'none' });
    expect(built.format).toBe('erofs');
    const fsck = spawnSync('fsck.erofs', [image], { encoding: 'utf8' });
    expect(fsck.stderr + fsck.stdout).not.toMatch(/error|corrupt/i);
    expect(fsck.status).toBe(0);
    const expected = expectedTree();
    await mounted(image, (root) => {
      expect(compareTrees(expected, root)).toBeUndefined();
      const times = mtimes(root);
      expect([...mtimes(expected)].filter(([path, time]) => path !== '.' && times.get(path) !== time)).toEqual([]);
      expect(lstatSync(join(root, 'sparse')).size).toBe(20 * 2 ** 20);
    });
  }, 60_000);
});

function tarOf(...options: string[]): string {
  const tar = join(work, `${randomBytes(4).toString('hex')}.tar`);
  execFileSync('tar', ['-c', '-f', tar, '--numeric-owner', ...options, '-C', source, '.']);
  return tar;
}

test('a sparse file in the old PAX 0.x form is refused with a message naming it', async () => {
  const out = join(work, 'pax01.erofs');
  const error = await buildError(tarOf('--format=posix', '--sparse', '--sparse-version=0.1'), out);
  expect(error).toMatchObject({ kind: 'user', code: 'E_TAR' });
  expect(error.message).toMatch(/'.*sparse' is a sparse file in the old PAX 0.x form/);
  expect(existsSync(out)).toBe(false);
});

test('a layer tar cut short is the layer\'s error, and no erofs file is left half-written', async () => {
  const whole = readFileSync(tarOf('--format=posix'));
  const cut = join(work, 'cut.tar');
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
  const out = join(work, 'cut.erofs');
  const error = await buildError(cut, out);
  expect(error).toMatchObject({ kind: 'user', code: 'E_TAR' });
  expect(error.message).toMatch(/^layer tar is truncated/);
  expect(existsSync(out)).toBe(false);
});

test('a layer file that cannot be written is the layer write\'s error, and nothing is left', async () => {
  const tar = tarOf('--format=posix');
  const error = await buildError(tar, join(work, 'no-such-dir', 'layer.erofs'));
  expect(error).toMatchObject({ kind: 'user', code: 'E_LAYER_WRITE' });
  expect(error.message).toMatch(/^cannot write the layer file .*no-such-dir\/layer.erofs: ENOENT$/);
  // A full filesystem: a 1 MiB tmpfs for a ~23 MiB layer.
  const small = join(work, 'small');
  mkdirSync(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'strata-erofs-test', small]);
  try {
    const full = await buildError(tar, join(small, 'layer.erofs'));
    expect(full).toMatchObject({ code: 'E_LAYER_WRITE' });
    expect(full.message).toMatch(/ENOSPC$/);
    expect(readdirSync(small)).toEqual([]);
  } finally {
    execFileSync('umount', [small]);
  }
});

test('a layer an erofs file cannot hold (a sparse file of 20 TiB, 300 KiB of xattrs) is refused before anything is written', async () => {
  const map = Buffer.alloc(512);
  map.write('1\n0\n5\n');
  const huge = join(work, 'huge.tar');
  writeFileSync(huge, buildTar([{ name: 'big', data: Buffer.concat([map, Buffer.from('hello')]), pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': 'big', 'GNU.sparse.realsize': String(20 * 2 ** 40) } }]));
  const error = await buildError(huge, join(work, 'huge.erofs'));
  expect(error).toMatchObject({ kind: 'user', code: 'E_LAYER_WRITE' });
  expect(error.message).toMatch(/too large for an erofs layer file .*at most 16 TiB/);
  expect(error.hint).toMatch(/compression: zstd/);
  expect(existsSync(join(work, 'huge.erofs'))).toBe(false);

  const xattrs = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`SCHILY.xattr.user.x${i}`, 'v'.repeat(60_000)]));
  const many = join(work, 'xattrs.tar');
  writeFileSync(many, buildTar([{ name: 'f', data: 'x', pax: xattrs }]));
  const refused = await buildError(many, join(work, 'xattrs.erofs'));
  expect(refused).toMatchObject({ kind: 'user', code: 'E_TAR' });
  expect(refused.message).toMatch(/^layer tar entry 'f' has \d+ bytes of xattrs, more than a layer file holds for one entry/);
});

/** Two erofs layer files of one-file trees that differ: the layer a job wants, and another. */
async function twoLayerFiles(prefix: string): Promise<{ mine: string; other: string }> {
  const files = { mine: join(work, `${prefix}mine.erofs`), other: join(work, `${prefix}other.erofs`) };
  for (const [name, file] of Object.entries(files)) {
    const dir = join(work, `${prefix}tree-${name}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'which'), name);
    await buildLayerFile({ source: { kind: 'dir', path: dir }, outputPath: file, compression: 'none' });
  }
  return files;
}

/** A job's rootfs step with one erofs layer, `file`, at `<layerDir>/abc`. */
const oneLayerStep = (layerDir: string, target: string, file: string) => ({ op: 'rootfs' as const, target, layerDir, options: 'lowerdir=abc', layers: [{ id: 'abc', digest: 'sha256:abc', file, mountPoint: join(layerDir, 'abc'), erofs: true as const }] });

/** `file` mounted at `mountPoint` (made if missing), backed by the file, as the executor mounts a layer. */
async function mountLayerFile(file: string, mountPoint: string) {
  mkdirSync(mountPoint, { recursive: true });
  expect((await helper.run(['loop', file, mountPoint, 'erofs', MS_RDONLY_NOSUID_NODEV, '-', 0])).reply).toMatchObject({ ok: true });
}

test('a layer mount point holding another erofs file is a clash the prolog names, not a layer it uses', async () => {
  const { mine, other } = await twoLayerFiles('clash-');
  const step = oneLayerStep(join(work, 'l'), join(work, 'rootfs'), mine);
  const { mountPoint } = step.layers[0];
  await mountLayerFile(other, mountPoint);
  try {
    await expect(mountRootfs(step)).rejects.toMatchObject({ kind: 'node', code: 'E_LAYER_CLASH', message: `${mountPoint} holds ${other}, not ${mine}` });
  } finally {
    execFileSync('umount', [mountPoint]);
  }
});

test('a layer mount found right once, released by strata, and then holding another file is a clash again', async () => {
  // The node agent checks a layer mount's backing file once per mount (stack.ts); a release forgets it.
  const { mine, other } = await twoLayerFiles('again-');
  const runtime = new RuntimePaths(join(work, 'again-run'));
  // No rootfs directory: mountRootfs checks the layers and stops before the overlay.
  const step = oneLayerStep(runtime.layerDir, join(work, 'again-rootfs'), mine);
  const { mountPoint } = step.layers[0];
  await mountLayerFile(mine, mountPoint);
  try {
    await expect(mountRootfs(step)).resolves.toEqual({ mountedLayers: 0, overlayMounted: false });
    await releaseUnusedLayers(runtime, 'release');
    expect(existsSync(mountPoint)).toBe(false);
    await mountLayerFile(other, mountPoint);
    await expect(mountRootfs(step)).rejects.toMatchObject({ kind: 'node', code: 'E_LAYER_CLASH', message: `${mountPoint} holds ${other}, not ${mine}` });
  } finally {
    spawnSync('umount', [mountPoint]);
  }
});

test('a path 29000 directories deep (the longest a layer may hold) is written and found by the kernel', async () => {
  const tar = join(work, 'deep.tar');
  writeFileSync(tar, buildTar([{ name: `${Array(29000).fill('d').join('/')}/f`, data: 'deep\n' }]));
  const image = join(work, 'deep.erofs');
  await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: image, compression: 'none' });
  await mounted(image, (root) => {
    // find walks by directory, below PATH_MAX at every step.
    const found = execFileSync('find', [root, '-name', 'f', '-type', 'f'], { encoding: 'utf8', maxBuffer: 1 << 20 }).trim();
    expect(found.length).toBe(root.length + 29000 * 2 + 2);
  });
}, 60_000);

// buildLayerFile end to end: real tar2sqfs, checked with unsquashfs and getfattr (no mounts).
// Layer tars are built in-process (test/helpers/tar-build.ts), as Python's tarfile writes them.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { isStrataError, type StrataError } from '../../src/errors.js';
import { TOOLS } from '../../src/host/tools.js';
import { buildLayerFile, type BuildLayerOptions } from '../../src/store/import/layer-file.js';
import { buildTar as build, type TarEntrySpec } from '../helpers/tar-build.js';

const GETFATTR = '/usr/bin/getfattr';
const SETFATTR = '/usr/bin/setfattr';
const RDSQUASHFS = '/usr/bin/rdsquashfs';

type EntrySpec = TarEntrySpec & { type?: 'file' | 'dir' | 'symlink' | 'hardlink'; data?: string };

let work: string;
let counter = 0;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-layer-build-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const fresh = (name: string) => join(work, `${counter++}-${name}`);

function buildTar(entries: EntrySpec[]): string {
  const path = fresh('layer.tar');
  writeFileSync(path, build(entries));
  return path;
}

interface Listed {
  mode: string;
  owner: string;
  /** Size, or "major,minor" for devices. */
  size: string;
  target?: string;
}

/** `unsquashfs -lln` (numeric -lls), keyed by path inside the image ('' is the root). */
function listImage(image: string): Map<string, Listed> {
  const out = execFileSync(TOOLS.unsquashfs, ['-lln', '-d', 'R', image], { encoding: 'utf8' });
  const entries = new Map<string, Listed>();
  for (const line of out.split('\n')) {
    const match = /^(\S{10}) (\S+)\s+(\d+,\s*\d+|\d+) \d{4}-\d\d-\d\d \d\d:\d\d R(\/.*?)?(?: -> (.*))?$/.exec(line);
    if (!match) continue;
    entries.set((match[4] ?? '').slice(1), { mode: match[1], owner: match[2], size: match[3].replace(/\s+/g, ''), target: match[5] });
  }
  return entries;
}

/** Unpacks the image and returns the xattrs of one path in it. */
function xattrs(image: string, path: string): Record<string, string> {
  const dir = fresh('unpacked');
  execFileSync(TOOLS.unsquashfs, ['-q', '-n', '-d', dir, image], { stdio: 'ignore' });
  const out = execFileSync(GETFATTR, ['-h', '-d', '-m', '-', '--absolute-names', join(dir, path)], { encoding: 'utf8' });
  const attrs: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const match = /^([^#=][^=]*)(?:="(.*)")?$/.exec(line);
    if (match) attrs[match[1]] = match[2] ?? '';
  }
  return attrs;
}

const sha256 = (path: string) => `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;

async function buildError(options: BuildLayerOptions): Promise<StrataError> {
  try {
    await buildLayerFile(options);
  } catch (error) {
    if (!isStrataError(error)) throw error;
    expect(error.message).not.toContain('\n');
    return error;
  }
  throw new Error('build succeeded, expected an error');
}

const LAYER: EntrySpec[] = [
  { name: './', type: 'dir', mode: 0o755 },
  { name: './etc/', type: 'dir', mode: 0o750, uid: 5, gid: 6 },
  { name: './etc/passwd', data: 'root:x:0:0\n' },
  { name: './etc/.wh.shadow', uid: 7, gid: 8 },
  { name: './opt/', type: 'dir', mode: 0o700, pax: { 'SCHILY.xattr.user.keep': 'me' } },
  { name: './opt/new', data: 'new' },
  { name: './opt/.wh..wh..opq' }, // after its directory and a file in it
  { name: './var/lib/apt/.wh.lists' }, // no entry for var/lib/apt
  { name: `./${'l'.repeat(120)}/${'m'.repeat(150)}`, data: 'long name' },
  { name: `./${'n'.repeat(200)}/${'o'.repeat(200)}`, data: 'very long name' },
  { name: './bin/sh', data: '#!busybox\n', mode: 0o755 },
  { name: './bin/ash', type: 'hardlink', linkname: './bin/sh' },
  { name: './bin/bash', type: 'symlink', linkname: '/bin/sh' },
];

function expectLayer(image: string) {
  const entries = listImage(image);
  expect(entries.get('etc/shadow')).toMatchObject({ mode: 'c---------', size: '0,0', owner: '7/8' });
  expect(entries.has('etc/.wh.shadow')).toBe(false);
  expect(entries.get('etc')).toMatchObject({ mode: 'drwxr-x---', owner: '5/6' });
  expect(entries.get('opt')).toMatchObject({ mode: 'drwx------' });
  expect(entries.has('opt/.wh..wh..opq')).toBe(false);
  expect(entries.get('var/lib/apt')).toMatchObject({ mode: 'drwxr-xr-x', owner: '0/0' });
  expect(entries.get('var/lib/apt/lists')).toMatchObject({ mode: 'c---------', size: '0,0' });
  expect(entries.get(`${'l'.repeat(120)}/${'m'.repeat(150)}`)).toMatchObject({ size: '9' });
  expect(entries.get(`${'n'.repeat(200)}/${'o'.repeat(200)}`)).toMatchObject({ size: '14' });
  expect(entries.get('bin/ash')).toMatchObject({ size: '10' });
  expect(entries.get('bin/bash')).toMatchObject({ mode: 'lrwxrwxrwx', target: '/bin/sh' });
  expect(entries.get('')).toMatchObject({ mode: 'drwxr-xr-x', owner: '0/0' });

  expect(xattrs(image, 'opt')).toEqual({ 'trusted.overlay.opaque': 'y', 'trusted.overlay.origin': '', 'user.keep': 'me' });
  expect(xattrs(image, 'etc')).toEqual({ 'trusted.overlay.origin': '' });
  expect(xattrs(image, 'var/lib/apt')).toEqual({ 'trusted.overlay.origin': '' });
  expect(xattrs(image, 'bin')).toEqual({});
}

describe('buildLayerFile from a tar', () => {
  it('builds a squashfs with overlay whiteouts, opaque dirs, long names and links, and returns the diff_id', async () => {
    const tar = buildTar(LAYER);
    const out = fresh('layer.sqfs.partial');
    const built = await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: out, compression: 'zstd' });
    expect(built).toEqual({ diffId: sha256(tar), bytesIn: readFileSync(tar).length, format: 'squashfs' });
    expectLayer(out);
  });

  it('reads gzip and zstd layer tars (by magic bytes, whatever the file name) with the same diff_id', async () => {
    const tar = buildTar(LAYER);
    const gz = fresh('layer.bin');
    writeFileSync(gz, gzipSync(readFileSync(tar)));
    const zst = fresh('layer.tar.gz'); // misleading name on purpose
    execFileSync(TOOLS.zstd, ['-q', '-o', zst, tar]);
    for (const [source, compression] of [[gz, 'gzip'], [zst, 'xz']] as const) {
      const out = fresh('layer.sqfs.partial');
      const built = await buildLayerFile({ source: { kind: 'tar', path: source }, outputPath: out, compression });
      expect(built.diffId).toBe(sha256(tar));
      expectLayer(out);
    }
  });

  it('builds lz4 layers (checked with rdsquashfs: unsquashfs 4.5.1 rejects their tiny id table)', async () => {
    // tar2sqfs 1.2 stores a small lz4 id table "compressed" but larger than raw; unsquashfs 4.5.1
    // refuses any table block larger than its uncompressed size, the kernel does not check that.
    const out = fresh('layer.sqfs.partial');
    await buildLayerFile({ source: { kind: 'tar', path: buildTar(LAYER) }, outputPath: out, compression: 'lz4' });
    const described = execFileSync(RDSQUASHFS, ['--describe', out], { encoding: 'utf8' }).split('\n');
    expect(described).toContain('nod etc/shadow 00 7 8 c 0 0');
    expect(described).toContain('nod var/lib/apt/lists 00 0 0 c 0 0');
    expect(described).toContain('dir opt 0700 0 0');
    const opt = execFileSync(RDSQUASHFS, ['--xattr', '/opt', out], { encoding: 'utf8' }).split('\n');
    expect(opt).toEqual(expect.arrayContaining(['trusted.overlay.opaque=y', 'trusted.overlay.origin=', 'user.keep=me']));
  });

  it('builds lz4hc layers: lz4 blocks compressed harder, smaller than lz4', async () => {
    // Compressible content over many blocks, where the two differ.
    const text = Array.from({ length: 60_000 }, (_, i) => `line ${i} ${(i * 7919) % 1000}`).join('\n');
    const tar = buildTar([...LAYER, { name: 'data/text', data: text }]);
    const sizes: Record<string, number> = {};
    for (const compression of ['lz4hc', 'lz4'] as const) {
      const out = fresh('layer.sqfs.partial');
      await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: out, compression });
      const superblock = execFileSync(TOOLS.unsquashfs, ['-s', out], { encoding: 'utf8' });
      expect(superblock).toMatch(/^Compression lz4$/m);
      expect(superblock.includes('High Compression option')).toBe(compression === 'lz4hc');
      expect(execFileSync(RDSQUASHFS, ['--describe', out], { encoding: 'utf8' }).split('\n')).toContain('dir opt 0700 0 0');
      sizes[compression] = statSync(out).size;
    }
    expect(sizes.lz4hc).toBeLessThan(sizes.lz4);
  });

  it('keeps sparse files from GNU tar', async () => {
    const dir = fresh('sparse-src');
    mkdirSync(dir);
    const fd = openSync(join(dir, 'holes'), 'w');
    for (let i = 0; i < 30; i++) writeSync(fd, `region ${i}\n`, i * 16384);
    closeSync(fd);
    const tar = fresh('sparse.tar');
    execFileSync(TOOLS.tar, ['--format=gnu', '--sparse', '-C', dir, '-cf', tar, '.']);
    const out = fresh('sparse.sqfs');
    await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: out, compression: 'zstd' });
    const unpacked = fresh('sparse-out');
    execFileSync(TOOLS.unsquashfs, ['-q', '-n', '-d', unpacked, out], { stdio: 'ignore' });
    expect(readFileSync(join(unpacked, 'holes')).equals(readFileSync(join(dir, 'holes')))).toBe(true);
  });
});

describe('buildLayerFile with names given twice (rebuilt from a plan; the last entry wins)', () => {
  const TWICE: EntrySpec[] = [
    { name: 'f', data: 'first' },
    { name: 'g', type: 'hardlink', linkname: 'f' },
    { name: 'f', data: 'second!', mode: 0o600 },
    { name: 'd', type: 'dir' },
    { name: 'd/in', data: 'gone' },
    { name: 'd', data: 'a file now' },
  ];
  const expectLast = (image: string) => {
    const entries = listImage(image);
    expect([...entries.keys()].sort()).toEqual(['', 'd', 'f', 'g']);
    expect(entries.get('f')).toMatchObject({ mode: '-rw-------', size: '7' });
    expect(entries.get('g')).toMatchObject({ size: '5' });
    expect(entries.get('d')).toMatchObject({ size: '10' });
  };

  it('from a tar file', async () => {
    const tar = buildTar(TWICE);
    const out = fresh('twice.sqfs');
    expect(await buildLayerFile({ source: { kind: 'tar', path: tar }, outputPath: out, compression: 'zstd' })).toEqual({ diffId: sha256(tar), bytesIn: readFileSync(tar).length, format: 'squashfs' });
    expectLast(out);
  });

  it('from a stream, opened again for the plan and the build', async () => {
    const bytes = gzipSync(readFileSync(buildTar(TWICE)));
    let opened = 0;
    const out = fresh('twice-stream.sqfs');
    const open = async () => {
      opened++;
      return (async function* () {
        yield bytes.subarray(0, 100);
        yield bytes.subarray(100);
      })();
    };
    await buildLayerFile({ source: { kind: 'stream', what: 'test stream', open }, outputPath: out, compression: 'zstd' });
    expect(opened).toBe(3);
    expectLast(out);
  });
});

describe('buildLayerFile from a directory', () => {
  it('tars the tree with xattrs and converts .wh. files found in it', async () => {
    const dir = fresh('rootfs');
    mkdirSync(join(dir, 'etc'), { recursive: true });
    mkdirSync(join(dir, 'usr/share/doc'), { recursive: true });
    writeFileSync(join(dir, 'etc/hostname'), 'node\n');
    writeFileSync(join(dir, 'etc/.wh.motd'), '');
    writeFileSync(join(dir, 'usr/share/doc/.wh..wh..opq'), '');
    writeFileSync(join(dir, 'usr/share/doc/README'), 'read me\n');
    symlinkSync('hostname', join(dir, 'etc/name'));
    execFileSync(SETFATTR, ['-n', 'user.origin', '-v', 'test', join(dir, 'etc/hostname')]);
    execFileSync('/usr/bin/chmod', ['0750', dir]);

    const out = fresh('dir.sqfs.partial');
    const built = await buildLayerFile({ source: { kind: 'dir', path: dir }, outputPath: out, compression: 'zstd' });
    expect(built.diffId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(built.bytesIn % 512).toBe(0);

    const entries = listImage(out);
    expect(entries.get('etc/motd')).toMatchObject({ mode: 'c---------', size: '0,0' });
    expect(entries.has('etc/.wh.motd')).toBe(false);
    expect(entries.get('etc/name')).toMatchObject({ target: 'hostname' });
    expect(entries.get('')).toMatchObject({ mode: 'drwxr-x---' });
    expect(xattrs(out, 'usr/share/doc')).toMatchObject({ 'trusted.overlay.opaque': 'y', 'trusted.overlay.origin': '' });
    expect(xattrs(out, 'etc/hostname')).toEqual({ 'user.origin': 'test' });

    // The same tree gives the same diff_id (no atime/ctime in the tar).
    const again = await buildLayerFile({ source: { kind: 'dir', path: dir }, outputPath: fresh('again.sqfs'), compression: 'lz4' });
    expect(again.diffId).toBe(built.diffId);
  });
});

describe('buildLayerFile errors', () => {
  it('names a missing source path', async () => {
    const missing = join(work, 'no-such-layer.tar');
    const error = await buildError({ source: { kind: 'tar', path: missing }, outputPath: fresh('x.sqfs'), compression: 'zstd' });
    expect(error).toMatchObject({ kind: 'user', code: 'E_BAD_SOURCE' });
    expect(error.message).toContain(missing);
    const notDir = await buildError({ source: { kind: 'dir', path: buildTar([{ name: 'f' }]) }, outputPath: fresh('x.sqfs'), compression: 'zstd' });
    expect(notDir.message).toMatch(/is not a directory/);
  });

  it('rejects path traversal with a one-line error and leaves no output file', async () => {
    for (const entries of [
      [{ name: 'ok', data: 'fine' }, { name: '../../etc/cron.d/evil', data: 'x' }],
      [{ name: '/etc/passwd', data: 'x' }],
      [{ name: 'ok', data: 'x'.repeat(2_000_000) }, { name: 'h', type: 'hardlink', linkname: '../outside' }],
    ] as EntrySpec[][]) {
      const out = fresh('evil.sqfs.partial');
      const error = await buildError({ source: { kind: 'tar', path: buildTar(entries) }, outputPath: out, compression: 'zstd' });
      expect(error).toMatchObject({ kind: 'user', code: 'E_TAR' });
      expect(error.message).toMatch(/absolute|'\.\.'/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('rejects truncated and corrupt input, plain or compressed, and leaves no output file', async () => {
    const tar = readFileSync(buildTar([{ name: 'big', data: 'b'.repeat(300_000) }, { name: 'small', data: 's' }]));
    const cut = fresh('cut.tar');
    writeFileSync(cut, tar.subarray(0, 200_000));
    const gzBytes = gzipSync(tar);
    const gz = fresh('cut.tar.gz');
    writeFileSync(gz, gzBytes.subarray(0, gzBytes.length >> 1));
    const badGz = fresh('bad.tar.gz');
    gzBytes[gzBytes.length - 6] ^= 0xff; // the CRC
    writeFileSync(badGz, gzBytes);
    const zst = fresh('cut.tar.zst');
    execFileSync(TOOLS.zstd, ['-q', '-o', zst, cut]);
    const badZst = fresh('bad.tar.zst');
    const zstBytes = execFileSync(TOOLS.zstd, ['-c'], { input: tar });
    zstBytes[zstBytes.length - 10] ^= 0xff;
    writeFileSync(badZst, zstBytes);
    const cases: Array<[string, RegExp]> = [
      [cut, /truncated/],
      [gz, /gzip data is corrupt \(unexpected end of file\)/],
      [badGz, /gzip data is corrupt/],
      [zst, /truncated/],
      [badZst, /zstd|corrupt|checksum/i],
    ];
    for (const [path, pattern] of cases) {
      const out = fresh('bad.sqfs.partial');
      const error = await buildError({ source: { kind: 'tar', path }, outputPath: out, compression: 'zstd' });
      expect(error).toMatchObject({ kind: 'user', code: 'E_TAR' });
      expect(error.message).toMatch(pattern);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('compression "none" builds an uncompressed erofs layer (tar2sqfs always compresses)', async () => {
    const out = fresh('x.erofs');
    const built = await buildLayerFile({ source: { kind: 'tar', path: buildTar([{ name: 'f', data: 'x' }]) }, outputPath: out, compression: 'none' });
    expect(built.format).toBe('erofs');
    // The erofs superblock's magic at byte 1024 (little-endian 0xE0F5E1E2).
    expect(readFileSync(out).readUInt32LE(1024)).toBe(0xe0f5e1e2);
  });

  it('reports a tar2sqfs failure with its first stderr line', async () => {
    const out = join(work, 'no-such-dir', 'layer.sqfs');
    const error = await buildError({ source: { kind: 'tar', path: buildTar([{ name: 'f', data: 'x' }]) }, outputPath: out, compression: 'zstd' });
    expect(error.code).toBe('E_SQUASHFS');
    expect(error.message).toMatch(/^tar2sqfs could not build the layer from layer tar .*: .*No such file or directory/);
    expect(existsSync(out)).toBe(false);
  });
});

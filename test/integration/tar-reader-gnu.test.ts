// The incremental tar reader against archives written by GNU tar in every format it has,
// including sparse files (old GNU sparse headers with extension blocks, PAX sparse 0.0/0.1/1.0).
// (Needs GNU tar; the reader's in-process tests are test/unit/tar-reader.test.ts.)

import { execFileSync } from 'node:child_process';
import { closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TYPE } from '../../src/tar/header.js';
import { ByteSource, readTar, type TarEntry } from '../../src/tar/reader.js';

const TAR = '/usr/bin/tar';

let work: string;
let tree: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-tar-reader-'));
  tree = join(work, 'tree');
  const deep = join(tree, 'a'.repeat(90), 'b'.repeat(90), 'c'.repeat(90));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'd'.repeat(120)), 'deep file\n');
  writeFileSync(join(tree, 'small'), 'small\n');
  symlinkSync('x'.repeat(150), join(tree, 'longlink'));
  linkSync(join(tree, 'small'), join(tree, 'hardlink'));
  // A sparse file with 30 data regions: more than an old GNU sparse header holds (4), so
  // extension blocks follow it.
  const fd = openSync(join(tree, 'sparse'), 'w');
  for (let i = 0; i < 30; i++) writeSync(fd, `region ${i}\n`, i * 16384);
  closeSync(fd);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function readAll(bytes: Buffer, chunkSize: number, readBodies: boolean) {
  const entries: Array<Pick<TarEntry, 'path' | 'linkpath' | 'typeflag' | 'size'> & { raw: Buffer }> = [];
  for await (const entry of readTar(new ByteSource(chunked(bytes, chunkSize)))) {
    const parts = entry.meta.map((b) => Buffer.from(b));
    if (readBodies) for await (const chunk of entry.body()) parts.push(Buffer.from(chunk));
    entries.push({ path: entry.path, linkpath: entry.linkpath, typeflag: entry.typeflag, size: entry.size, raw: Buffer.concat(parts) });
  }
  return entries;
}

const variants: Array<[string, string[]]> = [
  ['gnu', ['--format=gnu']],
  ['gnu sparse', ['--format=gnu', '--sparse']],
  ['oldgnu sparse', ['--format=oldgnu', '--sparse']],
  ['posix', ['--format=posix']],
  ['posix sparse 0.0', ['--format=posix', '--sparse', '--sparse-version=0.0']],
  ['posix sparse 0.1', ['--format=posix', '--sparse', '--sparse-version=0.1']],
  ['posix sparse 1.0', ['--format=posix', '--sparse', '--sparse-version=1.0']],
];

describe('readTar', () => {
  it.each(variants)('reads every entry GNU tar writes (%s)', async (_name, flags) => {
    const bytes = execFileSync(TAR, [...flags, '--sort=name', '-C', tree, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
    const names = execFileSync(TAR, ['-tf', '-'], { input: bytes, encoding: 'latin1', maxBuffer: 64 << 20 }).trim().split('\n');
    for (const chunkSize of [1, 509, 65536]) {
      const entries = await readAll(bytes, chunkSize, chunkSize !== 509);
      expect(entries.map((e) => e.path)).toEqual(names);
    }
    const entries = await readAll(bytes, 4096, true);
    const link = entries.find((e) => e.path === './longlink');
    expect(link).toMatchObject({ typeflag: TYPE.symlink, linkpath: 'x'.repeat(150) });
    // Sorted by name, ./hardlink comes first and holds the data; ./small links to it.
    expect(entries.find((e) => e.path === './small')).toMatchObject({ typeflag: TYPE.hardlink, linkpath: './hardlink', size: 0 });
    // Copying every entry's raw bytes reproduces the archive up to its end marker.
    const copied = Buffer.concat(entries.map((e) => e.raw));
    expect(copied.equals(bytes.subarray(0, copied.length))).toBe(true);
    expect(bytes.subarray(copied.length).every((byte) => byte === 0)).toBe(true);
  });
});

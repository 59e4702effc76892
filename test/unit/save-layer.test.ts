// --container-save's pure parts: the walker's record stream (cut at any byte), its OCI layer tar
// (listed with Python's tarfile, as any other tool would read it), the round trip through the
// import's own converter back to overlay form, and where a save target points.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStrataError } from '../../src/errors.js';
import { emptySummary, ociHeaders, ociLayerTar, SaveReadError } from '../../src/runtime/save/oci-layer.js';
import { parseSaveTarget } from '../../src/runtime/save/target.js';
import { parseRecordLine, readUpperRecords } from '../../src/runtime/save/upper-records.js';
import { toOverlayTar } from '../../src/tar/overlay-convert.js';
import { portableCompression } from '../../src/store/import/squashfs.js';

const hex = (text: string) => Buffer.from(text, 'latin1').toString('hex');

/** A walker stream: D/F/S/H/W/P/X lines, a file's bytes right after its line. */
function stream(withEnd = true): Buffer {
  const file = (path: string, data: string, mode = 0o100644) => `F ${mode} 1000 1000 5 ${data.length} ${hex(path)}\n${data}`;
  const long = `app/${'d'.repeat(120)}/${'f'.repeat(110)}`;
  return Buffer.from(
    [
      `D ${0o40755} 1000 1000 1 0 ${hex('.')}\n`,
      `D ${0o40755} 0 0 2 0 ${hex('data')}\n`,
      `W 0 0 3 ${hex('data/old.txt')}\n`,
      `D ${0o40700} 1000 1000 4 1 ${hex('opq')}\n`,
      file('opq/z', 'z\n'),
      file('app/tool', 'tool\n', 0o104750),
      `H ${hex('app/hard')} ${hex('app/tool')}\n`,
      `S ${0o120777} 1000 1000 6 ${hex('app/link')} ${hex('../etc/shadow')}\n`,
      `P ${0o10600} 1000 1000 7 ${hex('app/fifo')}\n`,
      `X ${hex('app/sock')} socket\n`,
      file('app/.wh.sneaky', 'x'),
      file(long, 'deep\n'),
      withEnd ? 'Z\n' : '',
    ].join(''),
    'latin1',
  );
}

/** Yields `bytes` in pieces of `size` (records and data cut anywhere). */
async function* pieces(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(input: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of input) parts.push(part);
  return Buffer.concat(parts);
}

const LIST = `
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        data = t.extractfile(m).read().decode() if m.isreg() else ''
        print(m.name, m.type.decode(), oct(m.mode), m.uid, m.linkname, repr(data), sep='|')
`;

function listTar(bytes: Buffer): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'save-layer-'));
  try {
    writeFileSync(join(dir, 'layer.tar'), bytes);
    return execFileSync('/usr/bin/python3', ['-c', LIST, join(dir, 'layer.tar')], { encoding: 'utf8' }).trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true });
  }
}

test.each([1, 7, 512, 1 << 16])('the layer in OCI form, whatever the chunking of the record stream (%i bytes)', async (size) => {
  const summary = emptySummary();
  const tar = await collect(ociLayerTar(readUpperRecords(pieces(stream(), size)), summary));
  expect(tar.length % 512).toBe(0);
  expect(listTar(tar)).toEqual([
    'data|5|0o755|0||\'\'',
    'data/.wh.old.txt|0|0o644|0||\'\'',
    'opq|5|0o700|1000||\'\'',
    'opq/.wh..wh..opq|0|0o644|1000||\'\'',
    "opq/z|0|0o644|1000||'z\\n'",
    "app/tool|0|0o4750|1000||'tool\\n'",
    'app/hard|1|0o644|0|app/tool|\'\'',
    'app/link|2|0o777|1000|../etc/shadow|\'\'',
    'app/fifo|6|0o600|1000||\'\'',
    `app/${'d'.repeat(120)}/${'f'.repeat(110)}|0|0o644|1000||'deep\\n'`,
  ]);
  expect(summary).toMatchObject({ whiteouts: 1, opaqueDirs: 1 });
  expect(summary.skipped).toEqual(['app/sock: a socket', 'app/.wh.sneaky: a name starting with .wh. means a deletion in an OCI layer']);
});

test('the saved layer goes back through the import converter to the overlay form it came from', async () => {
  const tar = await collect(ociLayerTar(readUpperRecords(pieces(stream(), 100)), emptySummary()));
  const converted = await collect(toOverlayTar(pieces(tar, 4096)));
  const listed = listTar(converted);
  // The whiteout is a character device again, the opaque marker gone (an xattr on opq).
  expect(listed).toContainEqual('data/old.txt|3|0o0|0||\'\'');
  expect(listed.some((line) => line.startsWith('opq/.wh..wh..opq'))).toBe(false);
  expect(listed.some((line) => line.includes('.wh.'))).toBe(false);
});

test('a walk that failed, or stopped early, gives no layer', async () => {
  const failed = Buffer.concat([stream(false), Buffer.from(`E EACCES ${hex('app/secret')} open: Permission denied\n`)]);
  await expect(collect(ociLayerTar(readUpperRecords(pieces(failed, 64)), emptySummary()))).rejects.toThrow(SaveReadError);
  await expect(collect(ociLayerTar(readUpperRecords(pieces(stream(false), 64)), emptySummary()))).rejects.toThrow(/stopped before its end/);
  // A file cut short: the stream ends inside its data.
  const cut = Buffer.from(`F ${0o100644} 0 0 0 10 ${hex('x')}\nabc`);
  const drain = async () => {
    for await (const record of readUpperRecords(pieces(cut, 2))) void record;
  };
  await expect(drain()).rejects.toThrow(/middle of an entry/);
});

test('malformed record lines are refused', () => {
  for (const line of ['Q 1', 'F 1 2 3 4 5', 'D 1 2 3 4 0 zz', 'H 6162', `F -1 0 0 0 0 ${hex('a')}`]) expect(() => parseRecordLine(line)).toThrow();
  expect(ociHeaders({ kind: 'dir', path: '.', opaque: false, mode: 0o40700, uid: 5, gid: 5, mtime: 0 })).toBeUndefined();
  expect(ociHeaders({ kind: 'dir', path: '.', opaque: true, mode: 0o40700, uid: 5, gid: 5, mtime: 0 })).toEqual({ headers: [expect.objectContaining({ name: '.wh..wh..opq' })] });
});

describe('save targets', () => {
  const where = { home: '/home/alice', workdir: '/lustre/proj/run1' };
  test.each([
    ['/scratch/a.sqsh', { kind: 'file', path: '/scratch/a.sqsh' }],
    ['out/a.sqsh', { kind: 'file', path: '/lustre/proj/run1/out/a.sqsh' }],
    ['../a.sqsh', { kind: 'file', path: '/lustre/proj/a.sqsh' }],
    ['~/imgs/a.sqsh', { kind: 'file', path: '/home/alice/imgs/a.sqsh' }],
    ['~/mine:1', { kind: 'image', tag: '~/mine:1' }],
    ['~/team/tools:2024.1', { kind: 'image', tag: '~/team/tools:2024.1' }],
  ])('%s', (text, expected) => expect(parseSaveTarget(text, where)).toEqual(expected));

  test.each([['', 'empty'], ['a\tb', 'control character'], ['/scratch/', 'directory'], ['/', 'directory'], ['x/..', 'directory'], ['.', 'directory'], ['out/', 'directory']])('refused: %j', (text, why) => {
    let thrown: unknown;
    try {
      parseSaveTarget(text, where);
    } catch (error) {
      thrown = error;
    }
    expect(isStrataError(thrown) && thrown.code === 'E_BAD_SAVE' && thrown.message.includes(why)).toBe(true);
  });

  test('a relative path needs the job\'s working directory', () => {
    expect(() => parseSaveTarget('a.sqsh', { home: '/home/alice' })).toThrow(/no working directory/);
  });
});

test('a saved file is a squashfs unsquashfs reads: zstd when the store is erofs (none, the default) or lz4, else the store\'s compression', () => {
  expect((['none', 'lz4', 'lz4hc', 'zstd', 'gzip', 'xz'] as const).map(portableCompression)).toEqual(['zstd', 'zstd', 'zstd', 'zstd', 'gzip', 'xz']);
});

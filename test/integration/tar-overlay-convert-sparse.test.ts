// The overlay tar converter on old GNU sparse files as GNU tar writes them (12 GiB sparse files,
// offsets past 8 GiB in base-256), checked by extracting its output with GNU tar. Moved out of the
// unit suite: it needs GNU tar and python3 and writes multi-GiB sparse files.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert, convertError } from '../helpers/overlay-convert.js';

const PYTHON = '/usr/bin/python3';

let work: string;
let counter = 0;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-overlay-convert-sparse-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('toOverlayTar: old GNU sparse files', () => {
  const GIB = 2 ** 30;
  // Regions below and past 8 GiB: GNU tar writes the latter's offsets in base-256.
  const regions: Array<[number, string]> = [
    [4096, 'low region'],
    [8 * GIB - 5, 'across the 8 GiB octal limit'],
    [11 * GIB + 3, 'high region'],
  ];
  const sparseTar = (name: string, size: number, at: Array<[number, string]>): Buffer => {
    const dir = join(work, `sparse-${counter++}`);
    execFileSync('/usr/bin/mkdir', [dir]);
    const script = 'import sys, json\nf = open(sys.argv[1], "wb"); f.truncate(int(sys.argv[2]))\nfor off, text in json.loads(sys.argv[3]):\n    f.seek(off); f.write(text.encode())\n';
    execFileSync(PYTHON, ['-c', script, join(dir, name), String(size), JSON.stringify(at)]);
    return execFileSync('/usr/bin/tar', ['--format=gnu', '--sparse', '-C', dir, '-cf', '-', name], { maxBuffer: 1 << 26 });
  };
  const readAt = (path: string, offset: number, length: number): string =>
    execFileSync(PYTHON, ['-c', 'import sys\nf = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); sys.stdout.write(f.read(int(sys.argv[3])).decode("latin1"))', path, String(offset), String(length)], { encoding: 'latin1' });

  it('passes a map that is all octal through byte for byte', async () => {
    const input = sparseTar('small', 5 * 1024 * 1024, [[0, 'a'], [3 * 1024 * 1024, 'b']]);
    expect(input[156]).toBe(0x53); // 'S'
    const { out } = await convert(input);
    const stored = parseInt(input.subarray(124, 135).toString('latin1'), 8); // the regions' data, as GNU tar found them
    const entryBytes = input.subarray(0, 512 + stored);
    expect(out.subarray(0, entryBytes.length).equals(entryBytes)).toBe(true);
  });

  it('rewrites a map with base-256 numbers (past 8 GiB) as PAX 1.0 sparse, which GNU tar extracts to the same file', async () => {
    const input = sparseTar('huge', 12 * GIB + 1, regions);
    expect(input[156]).toBe(0x53);
    expect(input.subarray(386, 482).some((byte) => byte === 0x80)).toBe(true); // precondition: base-256 in the map
    const { out, result } = await convert(input);
    expect(result.diffId).toBe(`sha256:${createHash('sha256').update(input).digest('hex')}`);
    expect(out.toString('latin1')).toContain('GNU.sparse.major=1');
    expect(out.toString('latin1')).toContain(`GNU.sparse.realsize=${12 * GIB + 1}`);
    const outPath = join(work, `out-${counter++}.tar`);
    writeFileSync(outPath, out);
    const dest = join(work, `extract-${counter++}`);
    execFileSync('/usr/bin/mkdir', [dest]);
    execFileSync('/usr/bin/tar', ['-xf', outPath, '-C', dest]);
    const extracted = join(dest, 'huge');
    expect(execFileSync('/usr/bin/stat', ['-c', '%s', extracted], { encoding: 'utf8' }).trim()).toBe(String(12 * GIB + 1));
    for (const [offset, text] of regions) {
      expect(readAt(extracted, offset, text.length)).toBe(text);
      expect(readAt(extracted, offset + text.length, 4)).toBe('\0\0\0\0');
    }
  });

  it('rejects a map field that is not a number', async () => {
    const input = Buffer.from(sparseTar('huge', 12 * GIB + 1, regions));
    input.write('99999999999\0', 386, 'latin1'); // the first region's offset: not octal
    input.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += input[i];
    input.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const error = await convertError(input);
    expect(error.message).toMatch(/^layer tar entry 'huge' has a bad sparse map: sparse offset field is not an octal number$/);
  });
});

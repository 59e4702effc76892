// Tar header blocks and PAX records: what we parse from real tools and what we write back.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOCK, TYPE, TarFormatError, parseHeader, readNumber, serializeHeader, splitUstarName } from '../../src/tar/header.js';
import { mergePax, paxValue, parsePax, serializePax } from '../../src/tar/pax.js';
import { encodeEntryHeader } from '../../src/tar/writer.js';

const PYTHON = '/usr/bin/python3';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'strata-tar-header-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Lists a tar with Python's tarfile: what a third-party reader makes of our bytes. */
function pythonList(bytes: Buffer): Array<Record<string, unknown>> {
  const path = join(work, `list-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(path, bytes);
  const script = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], encoding='utf-8', errors='surrogateescape') as tf:
    for ti in tf:
        out.append(dict(name=ti.name, type=ti.type.decode(), mode=ti.mode, uid=ti.uid, gid=ti.gid, mtime=ti.mtime,
                        uname=ti.uname, gname=ti.gname, linkname=ti.linkname, devmajor=ti.devmajor, devminor=ti.devminor,
                        pax=ti.pax_headers))
print(json.dumps(out))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, path], { encoding: 'utf8' }));
}

describe('parseHeader', () => {
  it('reads a GNU tar header and an all-zero block', () => {
    const dir = join(work, 'src');
    execFileSync('/usr/bin/mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'hello.txt'), 'hello\n');
    const tar = execFileSync('/usr/bin/tar', ['--format=ustar', '--owner=0', '--group=0', '--mtime=@1234567', '-C', dir, '-cf', '-', 'hello.txt']);
    const header = parseHeader(tar.subarray(0, BLOCK));
    expect(header).toMatchObject({ name: 'hello.txt', size: 6, mtime: 1234567, uid: 0, gid: 0, typeflag: TYPE.file, format: 'ustar' });
    expect(parseHeader(Buffer.alloc(BLOCK))).toBeNull();
  });

  it('rejects a block whose checksum does not match', () => {
    const block = serializeHeader({ name: 'a', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.file });
    block[0] = 'b'.charCodeAt(0);
    expect(() => parseHeader(block)).toThrow(TarFormatError);
  });

  it('reads base-256 numbers (GNU tar for large uids and sizes)', () => {
    const field = Buffer.alloc(12);
    field[0] = 0x80;
    field.writeUIntBE(2 ** 40 + 5, 6, 6);
    expect(readNumber(field, 0, 12, 'size')).toBe(2 ** 40 + 5);
    const negative = Buffer.alloc(12, 0xff); // -1
    expect(readNumber(negative, 0, 12, 'mtime')).toBe(-1);
    expect(readNumber(Buffer.from('0000755 \0'), 0, 9, 'mode')).toBe(0o755);
    expect(() => readNumber(Buffer.from('12x4'), 0, 4, 'mode')).toThrow(TarFormatError);
  });

  it('combines the ustar prefix with the name', () => {
    const name = `${'p'.repeat(120)}/${'n'.repeat(90)}`;
    expect(splitUstarName(name)).toEqual({ prefix: 'p'.repeat(120), name: 'n'.repeat(90) });
    const block = serializeHeader({ name, mode: 0o644, uid: 1, gid: 2, size: 3, mtime: 4, typeflag: TYPE.file });
    expect(parseHeader(block)?.name).toBe(name);
    expect(splitUstarName('x'.repeat(101))).toBeNull();
    expect(splitUstarName(`${'a'.repeat(200)}/b`)).toBeNull();
  });
});

describe('PAX records', () => {
  it('round-trips records whose length prefix crosses a digit boundary', () => {
    for (let n = 0; n < 120; n++) {
      const records = [{ key: 'path', value: 'x'.repeat(n) }, { key: 'SCHILY.xattr.trusted.overlay.origin', value: '' }];
      expect(parsePax(serializePax(records))).toEqual(records);
    }
  });

  it('keeps binary and UTF-8 values byte for byte', () => {
    const utf8 = Buffer.from('caf\u00e9/\u65e5\u672c', 'utf8').toString('latin1');
    const binary = Buffer.from([0, 1, 0xff, 0x0a, 0x3d]).toString('latin1');
    const records = [{ key: 'path', value: utf8 }, { key: 'SCHILY.xattr.user.bin', value: binary }];
    expect(parsePax(serializePax(records))).toEqual(records);
  });

  it('rejects malformed records', () => {
    expect(() => parsePax(Buffer.from('99 path=x\n'))).toThrow(TarFormatError);
    expect(() => parsePax(Buffer.from('5 ab\n'))).toThrow(TarFormatError);
  });

  it('merges the PAX way: later wins, empty deletes, empty xattrs stay', () => {
    const merged = mergePax(
      [{ key: 'comment', value: 'g' }, { key: 'uname', value: 'root' }],
      [{ key: 'uname', value: 'bob' }, { key: 'comment', value: '' }, { key: 'SCHILY.xattr.a', value: '' }],
    );
    expect(merged).toEqual([{ key: 'uname', value: 'bob' }, { key: 'SCHILY.xattr.a', value: '' }]);
    expect(paxValue(merged, 'uname')).toBe('bob');
  });
});

describe('encodeEntryHeader', () => {
  it('writes what Python reads back, moving what does not fit into PAX records', () => {
    const longName = `${'d'.repeat(150)}/${'e'.repeat(150)}/`;
    const bytes = Buffer.concat([
      encodeEntryHeader({ name: 'short/', mode: 0o750, uid: 5, gid: 6, size: 0, mtime: 99, typeflag: TYPE.dir, uname: 'u', gname: 'g' }),
      encodeEntryHeader({ name: longName, mode: 0o755, uid: 3_000_000, gid: 0, size: 0, mtime: 1.5, typeflag: TYPE.dir }, [
        { key: 'mtime', value: '1.5' },
        { key: 'SCHILY.xattr.trusted.overlay.opaque', value: 'y' },
      ]),
      encodeEntryHeader({ name: 'dev', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.char, devmajor: 0, devminor: 0 }),
      Buffer.alloc(1024),
    ]);
    const listed = pythonList(bytes);
    expect(listed).toHaveLength(3);
    expect(listed[0]).toMatchObject({ name: 'short', type: '5', mode: 0o750, uid: 5, gid: 6, mtime: 99, uname: 'u', gname: 'g' });
    expect(listed[1]).toMatchObject({ name: longName.slice(0, -1), uid: 3_000_000, mtime: 1.5 });
    expect(listed[1].pax).toMatchObject({ 'SCHILY.xattr.trusted.overlay.opaque': 'y', uid: '3000000' });
    expect(listed[2]).toMatchObject({ name: 'dev', type: '3', devmajor: 0, devminor: 0 });
  });
});

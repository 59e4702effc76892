// Tar header blocks and PAX records, parsed and written (against GNU tar and Python:
// test/integration/tar-header-tools.test.ts).

import { TYPE, TarFormatError, parseHeader, readNumber, serializeHeader, splitUstarName } from '../../src/tar/header.js';
import { mergePax, paxValue, parsePax, serializePax } from '../../src/tar/pax.js';

describe('parseHeader', () => {
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

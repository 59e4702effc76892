// One 512-byte tar header block: parse (ustar, GNU and v7 layouts; octal and base-256 numbers,
// checksum) and serialize (POSIX ustar; the caller adds a PAX header for what does not fit).
//
// Strings are "binary strings": one JS char per byte (latin1), so names round-trip byte-exact
// whatever their encoding. Use `displayName()` to show one to a person.

export const BLOCK = 512;

/** The typeflag characters strata cares about. */
export const TYPE = {
  file: '0',
  oldFile: '\0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  contiguous: '7',
  paxLocal: 'x',
  paxGlobal: 'g',
  gnuLongName: 'L',
  gnuLongLink: 'K',
  gnuSparse: 'S',
} as const;

export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

export interface TarHeader {
  /** Name as stored in the header (ustar: prefix + '/' + name; GNU: name only). */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  /** Size field: bytes of data that follow the header (rounded up to whole blocks on disk). */
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  format: HeaderFormat;
  /** GNU old-style sparse header: extension blocks with more sparse entries follow this header. */
  gnuSparseExtended: boolean;
}

/** Thrown for a block that cannot be a tar header; the reader turns it into a user error. */
export class TarFormatError extends Error {}

export const isZeroBlock = (block: Uint8Array): boolean => {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
};

/** Rounds a data size up to whole 512-byte blocks. */
export const padded = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;

const readString = (block: Uint8Array, offset: number, length: number): string => {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return Buffer.from(block.buffer, block.byteOffset + offset, end - offset).toString('latin1');
};

/** A numeric field: octal digits (space/NUL padded), or GNU base-256 when the top bit is set. */
export function readNumber(block: Uint8Array, offset: number, length: number, field: string): number {
  const first = block[offset];
  if (first & 0x80) {
    // Base-256, two's complement; 0x80 = positive, 0xff = negative.
    const negative = first === 0xff;
    let value = 0;
    for (let i = 0; i < length; i++) {
      let byte = block[offset + i];
      if (negative) byte = ~byte & 0xff;
      else if (i === 0) byte &= 0x7f;
      value = value * 256 + byte;
      if (!Number.isSafeInteger(value)) throw new TarFormatError(`${field} field is too large`);
    }
    return negative ? -(value + 1) : value;
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i];
    if (c >= 0x30 && c <= 0x37) {
      value = value * 8 + (c - 0x30);
      digits++;
    } else if (c === 0x20 || c === 0) {
      break;
    } else {
      throw new TarFormatError(`${field} field is not an octal number`);
    }
  }
  if (!Number.isSafeInteger(value)) throw new TarFormatError(`${field} field is too large`);
  return digits === 0 ? 0 : value;
}

/** Sum of the header bytes with the checksum field counted as spaces (unsigned and signed). */
function checksums(block: Uint8Array): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return [unsigned, signed];
}

/**
 * Parses one header block. Returns null for an all-zero block (end of archive).
 * Throws TarFormatError when the checksum does not match or a number field is garbage.
 */
export function parseHeader(block: Uint8Array): TarHeader | null {
  if (block.length < BLOCK) throw new TarFormatError('short header block');
  if (isZeroBlock(block)) return null;
  const stored = readNumber(block, 148, 8, 'checksum');
  const [unsigned, signed] = checksums(block);
  if (stored !== unsigned && stored !== signed) throw new TarFormatError('header checksum does not match');

  const magic = readString(block, 257, 6);
  const version = Buffer.from(block.buffer, block.byteOffset + 263, 2).toString('latin1');
  const format: HeaderFormat =
    magic === 'ustar' && version === '00' ? 'ustar' : magic === 'ustar ' || (magic === 'ustar' && version === ' \0') ? 'gnu' : 'v7';

  let name = readString(block, 0, 100);
  if (format === 'ustar') {
    const prefix = readString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const typeflag = String.fromCharCode(block[156]);
  return {
    name,
    mode: readNumber(block, 100, 8, 'mode'),
    uid: readNumber(block, 108, 8, 'uid'),
    gid: readNumber(block, 116, 8, 'gid'),
    size: readNumber(block, 124, 12, 'size'),
    mtime: readNumber(block, 136, 12, 'mtime'),
    typeflag,
    linkname: readString(block, 157, 100),
    uname: format === 'v7' ? '' : readString(block, 265, 32),
    gname: format === 'v7' ? '' : readString(block, 297, 32),
    devmajor: format === 'v7' ? 0 : readNumber(block, 329, 8, 'devmajor'),
    devminor: format === 'v7' ? 0 : readNumber(block, 337, 8, 'devminor'),
    format,
    gnuSparseExtended: format === 'gnu' && typeflag === TYPE.gnuSparse && block[482] !== 0,
  };
}

/** For a GNU sparse extension block: does yet another extension block follow? */
export const gnuSparseExtensionContinues = (block: Uint8Array): boolean => block[504] !== 0;

// ---- serializing ------------------------------------------------------------------------------

/** The fields needed to write a ustar header; values that do not fit must go into a PAX header. */
export interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: string;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

/** Largest value an octal field of `length` bytes holds (length-1 digits plus a terminator). */
export const octalMax = (length: number): number => 8 ** (length - 1) - 1;

const writeString = (block: Buffer, offset: number, length: number, value: string) => {
  block.write(value, offset, Math.min(length, Buffer.byteLength(value, 'latin1')), 'latin1');
};

const writeOctal = (block: Buffer, offset: number, length: number, value: number) => {
  const clamped = Number.isInteger(value) && value >= 0 && value <= octalMax(length) ? value : 0;
  block.write(clamped.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
  block[offset + length - 1] = 0;
};

/**
 * Splits a name into ustar `prefix` and `name` fields, or returns null when it cannot be stored
 * in ustar (then it must be carried by a PAX `path` record).
 */
export function splitUstarName(name: string): { prefix: string; name: string } | null {
  if (name.length <= 100) return { prefix: '', name };
  if (name.length > 256) return null;
  // The split point is a '/' with at most 155 bytes before it and at most 100 after it.
  for (let i = Math.min(155, name.length - 1); i > 0; i--) {
    if (name[i] === '/' && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.slice(0, i), name: name.slice(i + 1) };
    }
  }
  return null;
}

/** True when every numeric field and string fits in a plain ustar header. */
export function fitsUstar(fields: HeaderFields): { name: boolean; linkname: boolean; uid: boolean; gid: boolean; size: boolean; mtime: boolean; uname: boolean; gname: boolean } {
  const fitsNumber = (value: number, length: number) => Number.isInteger(value) && value >= 0 && value <= octalMax(length);
  return {
    name: splitUstarName(fields.name) !== null,
    linkname: (fields.linkname ?? '').length <= 100,
    uid: fitsNumber(fields.uid, 8),
    gid: fitsNumber(fields.gid, 8),
    size: fitsNumber(fields.size, 12),
    mtime: fitsNumber(fields.mtime, 12),
    uname: (fields.uname ?? '').length <= 32,
    gname: (fields.gname ?? '').length <= 32,
  };
}

/**
 * Writes a POSIX ustar header block. Fields that do not fit are truncated or zeroed: callers
 * check `fitsUstar` first and put such values into a PAX header.
 */
export function serializeHeader(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  const split = splitUstarName(fields.name) ?? { prefix: '', name: fields.name.slice(0, 100) };
  writeString(block, 0, 100, split.name);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, Math.trunc(fields.mtime));
  block.fill(0x20, 148, 156);
  block.write(fields.typeflag, 156, 1, 'latin1');
  writeString(block, 157, 100, fields.linkname ?? '');
  block.write('ustar\x0000', 257, 8, 'latin1');
  writeString(block, 265, 32, fields.uname ?? '');
  writeString(block, 297, 32, fields.gname ?? '');
  writeOctal(block, 329, 8, fields.devmajor ?? 0);
  writeOctal(block, 337, 8, fields.devminor ?? 0);
  writeString(block, 345, 155, split.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/** A binary-string name as text for messages (UTF-8 where it decodes, replacement chars elsewhere). */
export const displayName = (name: string): string => Buffer.from(name, 'latin1').toString('utf8');

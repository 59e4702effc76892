// Old GNU sparse entries (typeflag 'S', written by GNU tar --format=gnu/oldgnu --sparse) whose
// sparse map holds a base-256 number, rewritten as GNU sparse PAX 1.0 entries.
//
// Why: GNU tar writes map offsets and sizes past 8 GiB (11 octal digits) in base-256, and
// tar2sqfs (squashfs-tools-ng 1.2, lib/tar read_sparse_map_old.c) takes a map entry whose first
// byte is not a digit as the end of the map, then fails with "broken sparse file layout". The PAX
// 1.0 form carries the same map in decimal, and tar2sqfs reads it. Entries whose map is all octal
// pass through unchanged; the diff_id is computed on the input, so it is not affected either way.
//
// PAX 1.0 (GNU tar manual, "Storing Sparse Files"): an 'x' header with GNU.sparse.major=1,
// GNU.sparse.minor=0, GNU.sparse.name and GNU.sparse.realsize; a regular-file entry whose data is
// the map (count, then offset and size per region, one decimal number per line, padded to a
// whole block) followed by the regions' data exactly as the old form stored it.

import { userError } from '../errors.js';
import { TYPE, TarFormatError, displayName, padded, readNumber, type HeaderFields } from './header.js';
import type { PaxRecord } from './pax.js';
import type { TarEntry } from './reader.js';
import { encodeEntryHeader } from './writer.js';

/** Header: 4 map entries of 12+12 bytes at 386, realsize at 483. Extension blocks: 21 entries at 0. */
const HEADER_MAP = { at: 386, count: 4 };
const EXTENSION_MAP = { at: 0, count: 21 };
const REALSIZE = 483;

interface MapFields {
  block: Buffer;
  at: number;
  count: number;
}

const fieldsOf = (entry: TarEntry): MapFields[] => [
  { block: entry.headerBlock, ...HEADER_MAP },
  ...entry.sparseExtensions.map((block) => ({ block, ...EXTENSION_MAP })),
];

/** Map entries in use: GNU tar leaves unused ones zero-filled. */
function* usedEntries(fields: MapFields[]): Generator<{ block: Buffer; at: number }> {
  for (const { block, at, count } of fields) {
    for (let i = 0; i < count; i++) {
      const offset = at + i * 24;
      if (block[offset] === 0 && block[offset + 12] === 0) return;
      yield { block, at: offset };
    }
  }
}

export interface SparseMap {
  /** The stored regions in file order; the entry's data is their bytes, one after another. */
  regions: { offset: number; size: number }[];
  /** The file's size, holes included. */
  realsize: number;
}

/** The map of an old GNU sparse entry (typeflag 'S'). Throws TarFormatError on a bad number. */
export function oldGnuSparseMap(entry: TarEntry): SparseMap {
  const regions = [...usedEntries(fieldsOf(entry))].map(({ block, at }) => ({ offset: readNumber(block, at, 12, 'sparse offset'), size: readNumber(block, at + 12, 12, 'sparse size') }));
  return { regions, realsize: readNumber(entry.headerBlock, REALSIZE, 12, 'sparse realsize') };
}

/**
 * The map at the start of a PAX 1.0 sparse entry's data (count, then offset and size per region,
 * one decimal number per line, padded to a whole block), and how many bytes of data it took.
 */
export function pax10SparseMap(data: Buffer, realsize: number): SparseMap & { mapBytes: number } {
  const numbers: number[] = [];
  let at = 0;
  const next = () => {
    const newline = data.indexOf(10, at);
    const text = newline < 0 ? '' : data.toString('latin1', at, newline);
    if (!/^[0-9]{1,18}$/.test(text)) throw new TarFormatError('bad PAX 1.0 sparse map');
    at = newline + 1;
    return Number(text);
  };
  const count = next();
  for (let i = 0; i < count * 2; i++) numbers.push(next());
  const regions = [];
  for (let i = 0; i < numbers.length; i += 2) regions.push({ offset: numbers[i], size: numbers[i + 1] });
  return { regions, realsize, mapBytes: padded(at) };
}

/** An old GNU sparse entry that tar2sqfs would misread (see the file comment). */
export function needsSparseRewrite(entry: TarEntry): boolean {
  if (entry.typeflag !== TYPE.gnuSparse || entry.header.format !== 'gnu') return false;
  for (const { block, at } of usedEntries(fieldsOf(entry))) {
    if (block[at] & 0x80 || block[at + 12] & 0x80) return true;
  }
  return false;
}

/**
 * The header blocks and map block of the PAX 1.0 form of `entry` (the entry's data follows them
 * unchanged). `extraRecords` are PAX records to keep (xattrs and the like); `path` is its name.
 */
export function sparseAsPax10(entry: TarEntry, path: string, extraRecords: readonly PaxRecord[]): Buffer {
  try {
    const { regions, realsize } = oldGnuSparseMap(entry);
    const map = regions.flatMap(({ offset, size }) => [offset, size]);
    const text = Buffer.from(`${map.length / 2}\n${map.map((n) => `${n}\n`).join('')}`, 'latin1');
    const mapBlock = Buffer.alloc(padded(text.length));
    text.copy(mapBlock);
    const base = path.split('/').pop() ?? path;
    const fields: HeaderFields = {
      name: `GNUSparseFile.0/${base}`.slice(0, 100),
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: mapBlock.length + entry.size,
      mtime: Math.trunc(entry.mtime),
      typeflag: TYPE.file,
      uname: entry.uname,
      gname: entry.gname,
    };
    const records: PaxRecord[] = [
      ...extraRecords,
      { key: 'GNU.sparse.major', value: '1' },
      { key: 'GNU.sparse.minor', value: '0' },
      { key: 'GNU.sparse.name', value: path },
      { key: 'GNU.sparse.realsize', value: String(realsize) },
    ];
    // encodeEntryHeader only adds a `path` record when the placeholder name does not fit; the
    // real name is GNU.sparse.name, which readers of the 1.0 form use instead.
    return Buffer.concat([encodeEntryHeader(fields, records), mapBlock]);
  } catch (error) {
    if (error instanceof TarFormatError) {
      throw userError('E_TAR', `layer tar entry '${displayName(path)}' has a bad sparse map: ${error.message}`, { hint: 'the layer tar is malformed or hostile; rebuild the image' });
    }
    throw error;
  }
}

// Well-formed tar archives built in-process, the way Python's tarfile writes them: PAX (the
// default), GNU (long names as ././@LongLink entries) or plain ustar; directory names end in '/';
// the archive is padded to 10 KiB records. Tests build their layer tars here instead of starting
// python3 or tar for each one, and list what came out with `listTar`. (Tars no honest tool
// writes come from test/hostile/tar-builder.ts.)

import { BLOCK, TYPE, displayName, padded, serializeHeader, type HeaderFields } from '../../src/tar/header.js';
import { serializePax, type PaxRecord } from '../../src/tar/pax.js';
import { ByteSource, readTar } from '../../src/tar/reader.js';
import { END_OF_ARCHIVE, encodeEntryHeader } from '../../src/tar/writer.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntrySpec {
  /** UTF-8 text, or the name's raw bytes (which need not be UTF-8). */
  name: string | Buffer;
  type?: EntryType;
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  uname?: string;
  gname?: string;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** PAX records for this entry (PAX format only), as text. */
  pax?: Record<string, string>;
}

export interface TarOptions {
  format?: 'pax' | 'gnu' | 'ustar';
  /** A global PAX header ('g') before the entries (PAX format only). */
  global?: Record<string, string>;
}

const TYPEFLAGS: Record<EntryType, string> = {
  file: TYPE.file,
  dir: TYPE.dir,
  symlink: TYPE.symlink,
  hardlink: TYPE.hardlink,
  char: TYPE.char,
  block: TYPE.block,
  fifo: TYPE.fifo,
};

/** Python's tarfile pads an archive to whole records of 20 blocks. */
const RECORD = 20 * BLOCK;

/** UTF-8 text as a binary string (one char per byte), the way the tar code carries names. */
const binary = (text: string | Buffer): string => (Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8')).toString('latin1');
const records = (pax: Record<string, string>): PaxRecord[] => Object.entries(pax).map(([key, value]) => ({ key: binary(key), value: binary(value) }));
const withPadding = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc(padded(data.length) - data.length)]);

/** A tar archive holding `entries` in order. */
export function buildTar(entries: TarEntrySpec[], options: TarOptions = {}): Buffer {
  const format = options.format ?? 'pax';
  const parts: Buffer[] = [];
  if (options.global) {
    if (format !== 'pax') throw new Error('global PAX headers need the PAX format');
    const body = serializePax(records(options.global));
    parts.push(serializeHeader({ name: 'pax_global_header', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: TYPE.paxGlobal }), withPadding(body));
  }
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const data = type === 'file' ? Buffer.from(entry.data ?? '') : Buffer.alloc(0);
    const fields: HeaderFields = {
      name: type === 'dir' && !binary(entry.name).endsWith('/') ? `${binary(entry.name)}/` : binary(entry.name),
      mode: entry.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      size: data.length,
      mtime: entry.mtime ?? 0,
      typeflag: TYPEFLAGS[type],
      linkname: binary(entry.linkname ?? ''),
      uname: entry.uname ?? '',
      gname: entry.gname ?? '',
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    };
    if (format === 'pax') parts.push(encodeEntryHeader(fields, records(entry.pax ?? {})));
    else if (entry.pax) throw new Error(`PAX records need the PAX format (entry ${displayName(binary(entry.name))})`);
    else if (format === 'gnu') parts.push(gnuHeader(fields));
    else parts.push(serializeHeader(fields));
    parts.push(withPadding(data));
  }
  parts.push(END_OF_ARCHIVE);
  const archive = Buffer.concat(parts);
  return Buffer.concat([archive, Buffer.alloc(Math.ceil(archive.length / RECORD) * RECORD - archive.length)]);
}

/** A GNU header: names and link targets over 100 bytes go into ././@LongLink entries before it. */
function gnuHeader(fields: HeaderFields): Buffer {
  const longLink = (typeflag: string, value: string) => {
    const body = Buffer.from(`${value}\0`, 'latin1');
    return [gnuBlock({ name: '././@LongLink', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag }), withPadding(body)];
  };
  const linkname = fields.linkname ?? '';
  return Buffer.concat([
    ...(fields.name.length > 100 ? longLink(TYPE.gnuLongName, fields.name) : []),
    ...(linkname.length > 100 ? longLink(TYPE.gnuLongLink, linkname) : []),
    gnuBlock({ ...fields, name: fields.name.slice(0, 100), linkname: linkname.slice(0, 100) }),
  ]);
}

/** A header block with the GNU magic ("ustar  \0") and no ustar prefix field. */
function gnuBlock(fields: HeaderFields): Buffer {
  const block = serializeHeader(fields);
  block.write('ustar  \0', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** `bytes` as a stream of `size`-byte chunks (copies, as a socket would hand them over). */
export async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield new Uint8Array(bytes.subarray(i, i + size));
}

/** One entry as Python's tarfile lists it: names decoded from UTF-8, directories without the '/'. */
export interface ListedEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** The PAX records in effect for the entry (global, then its own), 'path' left out. */
  pax: Record<string, string>;
  /** The data, one char per byte. */
  data: string;
}

/** The entries of a tar archive (global PAX headers are applied, not listed). */
export async function listTar(bytes: Buffer): Promise<ListedEntry[]> {
  const listed: ListedEntry[] = [];
  for await (const entry of readTar(new ByteSource(chunked(bytes, bytes.length)))) {
    if (entry.typeflag === TYPE.paxGlobal) continue;
    const parts: Buffer[] = [];
    for await (const part of entry.body()) parts.push(Buffer.from(part));
    const pax: Record<string, string> = {};
    for (const { key, value } of [...entry.globalPax, ...entry.pax]) if (key !== 'path') pax[displayName(key)] = displayName(value);
    const name = displayName(entry.path);
    listed.push({
      name: entry.typeflag === TYPE.dir ? name.replace(/(.)\/+$/, '$1') : name,
      type: entry.typeflag,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      uname: displayName(entry.uname),
      gname: displayName(entry.gname),
      linkname: displayName(entry.linkpath),
      devmajor: entry.header.devmajor,
      devminor: entry.header.devminor,
      pax,
      data: Buffer.concat(parts).subarray(0, entry.size).toString('latin1'),
    });
  }
  return listed;
}

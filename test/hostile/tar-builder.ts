// Builds tar archives byte by byte (ustar headers, PAX records where asked), including ones no
// honest tool writes: lying sizes, escaping names, links out of the archive.

import { BLOCK, TYPE, serializeHeader, type HeaderFields } from '../../src/tar/header.js';
import { serializePax } from '../../src/tar/pax.js';
import { END_OF_ARCHIVE } from '../../src/tar/writer.js';

export interface Entry {
  name: string;
  type?: string;
  data?: string;
  linkname?: string;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
  /** Raw replacement for the size field (octal text), to lie about the size. */
  rawSize?: string;
}

/** A tar archive from entries (ustar headers, PAX records where asked), built byte by byte. */
export function buildTar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.pax) {
      const body = serializePax(Object.entries(entry.pax).map(([key, value]) => ({ key, value })));
      parts.push(serializeHeader({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: TYPE.paxLocal }), pad(body));
    }
    const data = Buffer.from(entry.data ?? '');
    const fields: HeaderFields = {
      name: entry.name.slice(0, 100),
      mode: entry.type === TYPE.dir ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      size: (entry.type ?? TYPE.file) === TYPE.file ? data.length : 0,
      mtime: 0,
      typeflag: entry.type ?? TYPE.file,
      linkname: entry.linkname,
      devmajor: entry.devmajor,
      devminor: entry.devminor,
    };
    const header = serializeHeader(fields);
    if (entry.rawSize !== undefined) {
      header.fill(0, 124, 136);
      header.write(entry.rawSize, 124, 12, 'latin1');
      fixChecksum(header);
    }
    parts.push(header, pad(data));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);

function fixChecksum(header: Buffer) {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  header[154] = 0;
  header[155] = 0x20;
}


// Writes header-only tar entries (directories, device nodes) as an optional PAX 'x' header plus a
// ustar header; whatever does not fit the ustar fields goes into PAX records.

import { BLOCK, TYPE, fitsUstar, padded, serializeHeader, type HeaderFields } from './header.js';
import { serializePax, type PaxRecord } from './pax.js';

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

/**
 * One entry's header blocks. `records` are written as given (order kept); records for fields that
 * do not fit ustar (path, linkpath, uid, gid, size, mtime, uname, gname) are added when missing.
 */
export function encodeEntryHeader(fields: HeaderFields, records: readonly PaxRecord[] = []): Buffer {
  const fits = fitsUstar(fields);
  const all = [...records];
  const has = (key: string) => all.some((record) => record.key === key);
  const need = (ok: boolean, key: string, value: string) => {
    if (!ok && !has(key)) all.push({ key, value });
  };
  need(fits.name, 'path', fields.name);
  need(fits.linkname, 'linkpath', fields.linkname ?? '');
  need(fits.uid, 'uid', String(fields.uid));
  need(fits.gid, 'gid', String(fields.gid));
  need(fits.size, 'size', String(fields.size));
  need(fits.mtime, 'mtime', String(fields.mtime));
  need(fits.uname, 'uname', fields.uname ?? '');
  need(fits.gname, 'gname', fields.gname ?? '');

  const header = serializeHeader(fields);
  if (all.length === 0) return header;
  const data = serializePax(all);
  const base = fields.name.replace(/\/+$/, '').split('/').pop() || '.';
  const paxHeader = serializeHeader({
    name: `PaxHeaders/${base}`.slice(0, 100),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 0,
    typeflag: TYPE.paxLocal,
  });
  const out = Buffer.alloc(BLOCK + padded(data.length) + BLOCK);
  paxHeader.copy(out, 0);
  data.copy(out, BLOCK);
  header.copy(out, BLOCK + padded(data.length));
  return out;
}

// PAX extended header records ("<len> <key>=<value>\n"), kept in order, as binary strings
// (one char per byte) so that UTF-8 paths and binary xattr values round-trip unchanged.

import { TarFormatError } from './header.js';

export interface PaxRecord {
  key: string;
  value: string;
}

/** PAX xattr records are `SCHILY.xattr.<name>` (GNU tar, libarchive, Go, Python all agree). */
export const XATTR_PREFIX = 'SCHILY.xattr.';

export function parsePax(data: Uint8Array): PaxRecord[] {
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const records: PaxRecord[] = [];
  let pos = 0;
  while (pos < text.length) {
    // Trailing NUL padding (some writers pad the data block) ends the record list.
    if (text.charCodeAt(pos) === 0) break;
    const space = text.indexOf(' ', pos);
    const length = space > pos ? Number(text.slice(pos, space)) : NaN;
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > text.length) {
      throw new TarFormatError('malformed PAX extended header record');
    }
    const record = text.slice(space + 1, pos + length);
    if (!record.endsWith('\n')) throw new TarFormatError('malformed PAX extended header record');
    const equals = record.indexOf('=');
    if (equals <= 0) throw new TarFormatError('malformed PAX extended header record');
    records.push({ key: record.slice(0, equals), value: record.slice(equals + 1, -1) });
    pos += length;
  }
  return records;
}

export function serializePax(records: readonly PaxRecord[]): Buffer {
  const parts: string[] = [];
  for (const { key, value } of records) {
    const body = ` ${key}=${value}\n`;
    // The length prefix counts its own digits: grow until stable.
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length = String(length).length + body.length;
    parts.push(String(length) + body);
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** The last value of `key` (later records override earlier ones), or undefined. */
export function paxValue(records: readonly PaxRecord[], key: string): string | undefined {
  for (let i = records.length - 1; i >= 0; i--) if (records[i].key === key) return records[i].value;
  return undefined;
}

/**
 * Applies `overrides` on top of `base` the PAX way: a later record replaces an earlier one with the
 * same key, and an empty value deletes the key. Order of first appearance is kept.
 */
export function mergePax(base: readonly PaxRecord[], overrides: readonly PaxRecord[]): PaxRecord[] {
  const merged = new Map<string, string>();
  for (const { key, value } of [...base, ...overrides]) {
    if (value === '' && !key.startsWith(XATTR_PREFIX)) merged.delete(key);
    else merged.set(key, value);
  }
  return [...merged].map(([key, value]) => ({ key, value }));
}

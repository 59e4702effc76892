// The DT_SONAME of a shared library: what ldconfig would name the link to it (libcuda.so.1 ->
// libcuda.so.550.54.15). strata makes those links itself instead of running ldconfig (see
// src/runtime/job/devices-plan.ts), so it reads the soname from the host's driver library, a file
// named by a root-owned spec, never from image content. ELF32/ELF64, either byte order.

import { closeSync, openSync, readSync } from 'node:fs';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0;
const DT_STRTAB = 5;
const DT_SONAME = 14;
/** No driver library's headers, dynamic section and string table lie this far apart from the start. */
const MAX_READ = 64 * 1024 * 1024;

/** The library's soname, or undefined when it is not an ELF shared object with one. */
export function readSoname(path: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const file = fd;
    const read = (offset: number, length: number): Buffer => {
      if (offset < 0 || length < 0 || offset + length > MAX_READ) throw new RangeError('out of range');
      const buffer = Buffer.alloc(length);
      const got = readSync(file, buffer, 0, length, offset);
      if (got !== length) throw new RangeError('short read');
      return buffer;
    };
    return sonameOf(read);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

type Reader = (offset: number, length: number) => Buffer;

function sonameOf(read: Reader): string | undefined {
  const ident = read(0, 16);
  if (ident.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const wide = ident[4] === 2;
  const little = ident[5] === 1;
  const header = read(0, wide ? 64 : 52);
  const u16 = (b: Buffer, at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at));
  const u32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
  const word = (b: Buffer, at: number) => (wide ? Number(little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : u32(b, at));
  const phoff = word(header, wide ? 32 : 28);
  const phentsize = u16(header, wide ? 54 : 42);
  const phnum = u16(header, wide ? 56 : 44);
  // Program headers: type, then offset/vaddr/filesz at width-dependent places.
  const segments = Array.from({ length: phnum }, (_, index) => {
    const ph = read(phoff + index * phentsize, phentsize);
    return wide
      ? { type: u32(ph, 0), offset: word(ph, 8), vaddr: word(ph, 16), filesz: word(ph, 32) }
      : { type: u32(ph, 0), offset: u32(ph, 4), vaddr: u32(ph, 8), filesz: u32(ph, 16) };
  });
  const dynamic = segments.find((segment) => segment.type === PT_DYNAMIC);
  if (!dynamic) return undefined;
  const entrySize = wide ? 16 : 8;
  const table = read(dynamic.offset, dynamic.filesz - (dynamic.filesz % entrySize));
  let strtab: number | undefined;
  let soname: number | undefined;
  for (let at = 0; at + entrySize <= table.length; at += entrySize) {
    const tag = word(table, at);
    const value = word(table, at + entrySize / 2);
    if (tag === DT_NULL) break;
    if (tag === DT_STRTAB) strtab = value;
    if (tag === DT_SONAME) soname = value;
  }
  if (strtab === undefined || soname === undefined) return undefined;
  // DT_STRTAB is an address: find it in the loaded segment that maps it.
  const address = strtab;
  const load = segments.find((segment) => segment.type === PT_LOAD && address >= segment.vaddr && address < segment.vaddr + segment.filesz);
  if (!load) return undefined;
  const start = load.offset + (address - load.vaddr) + soname;
  const bytes = read(start, Math.min(256, load.offset + load.filesz - start));
  const end = bytes.indexOf(0);
  const name = bytes.subarray(0, end < 0 ? bytes.length : end).toString('latin1');
  // A name ldconfig would make a link of: a plain file name.
  return end > 0 && /^[\w.+-]+$/.test(name) && name !== '.' && name !== '..' ? name : undefined;
}

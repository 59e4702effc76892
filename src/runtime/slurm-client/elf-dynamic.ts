// Just enough of an ELF executable's program headers to run it with its own dynamic loader from
// elsewhere: the loader it names (PT_INTERP) and the directories it searches first (DT_RUNPATH, or
// the older DT_RPATH; `$ORIGIN` expanded). Pure: works on the file's bytes. Read for the node's
// own Slurm commands (src/host/slurm-client.ts), which are trusted host files.

import { posix } from 'node:path';

export interface ElfDynamic {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; absent for a static executable. */
  interpreter?: string;
  /** DT_RUNPATH (else DT_RPATH) entries, `$ORIGIN`/`${ORIGIN}` replaced by the file's directory. */
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_STRTAB = 5;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** `length` bytes of the file from `offset` (fewer at its end). */
export type ReadAt = (offset: number, length: number) => Buffer;

/** A ReadAt over bytes already in memory. */
export const inMemory = (bytes: Buffer): ReadAt => (offset, length) => bytes.subarray(offset, offset + length);

/**
 * The loader and run path of the 64-bit little-endian ELF file at `path`, or a reason. Reads only
 * the header, the program headers, the dynamic section and the run path string (a few small reads:
 * the prolog does this for every Slurm command).
 */
export function readElfDynamic(read: ReadAt, path: string): ElfDynamic | { error: string } {
  const head = read(0, 64);
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return { error: 'not an ELF file' };
  if (head[4] !== 2 || head[5] !== 1) return { error: 'not a 64-bit little-endian ELF file' };
  try {
    const headersAt = Number(head.readBigUInt64LE(0x20));
    const headerSize = head.readUInt16LE(0x36);
    const count = head.readUInt16LE(0x38);
    const table = exactly(read, headersAt, headerSize * count);
    const headers = Array.from({ length: count }, (_, index) => {
      const at = index * headerSize;
      return {
        type: table.readUInt32LE(at),
        offset: Number(table.readBigUInt64LE(at + 0x08)),
        address: Number(table.readBigUInt64LE(at + 0x10)),
        fileSize: Number(table.readBigUInt64LE(at + 0x20)),
      };
    });
    const cString = (at: number) => {
      for (let length = 256; ; length *= 4) {
        const chunk = read(at, length);
        const end = chunk.indexOf(0);
        if (end >= 0) return chunk.toString('utf8', 0, end);
        if (chunk.length < length || length > 65536) throw new RangeError('unterminated string');
      }
    };
    const result: ElfDynamic = { runpath: [] };
    const interp = headers.find((header) => header.type === PT_INTERP);
    if (interp) result.interpreter = cString(interp.offset);
    const dynamic = headers.find((header) => header.type === PT_DYNAMIC);
    if (!dynamic) return result;
    // The dynamic section names the string table by virtual address: map it through PT_LOAD.
    const fileOffset = (address: number) => {
      const load = headers.find((header) => header.type === PT_LOAD && address >= header.address && address < header.address + header.fileSize);
      if (!load) throw new RangeError('address outside the file');
      return load.offset + address - load.address;
    };
    const entries = exactly(read, dynamic.offset, dynamic.fileSize - (dynamic.fileSize % 16));
    let strtab: number | undefined;
    const paths: Record<number, number> = {};
    for (let at = 0; at + 16 <= entries.length; at += 16) {
      const tag = Number(entries.readBigInt64LE(at));
      const value = Number(entries.readBigUInt64LE(at + 8));
      if (tag === 0) break;
      if (tag === DT_STRTAB) strtab = fileOffset(value);
      if (tag === DT_RUNPATH || tag === DT_RPATH) paths[tag] = value;
    }
    const chosen = paths[DT_RUNPATH] ?? paths[DT_RPATH];
    if (strtab !== undefined && chosen !== undefined) {
      const origin = posix.dirname(path);
      result.runpath = cString(strtab + chosen)
        .split(':')
        .filter(Boolean)
        .map((entry) => posix.normalize(entry.replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin)));
    }
    return result;
  } catch (error) {
    return { error: `damaged ELF file (${(error as Error).message})` };
  }
}

function exactly(read: ReadAt, offset: number, length: number): Buffer {
  if (length > 1024 * 1024) throw new RangeError('implausibly large table');
  const bytes = read(offset, length);
  if (bytes.length < length) throw new RangeError('truncated file');
  return bytes;
}

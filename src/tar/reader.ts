// An incremental tar reader over a stream of byte chunks. Entries come out one at a time with
// their metadata parsed (PAX 'x' and 'g' records, GNU long names/links applied) and the raw bytes of
// their header blocks kept, so a consumer can pass an entry through unchanged. Entry data is never
// buffered: `body()` hands out slices of the input chunks as they arrive.
// Long (over ~300 lines): one incremental parser state machine (headers, PAX, GNU long names).

import { userError } from '../errors.js';
import { BLOCK, TYPE, TarFormatError, gnuSparseExtensionContinues, padded, parseHeader, type TarHeader } from './header.js';
import { mergePax, paxValue, parsePax, type PaxRecord } from './pax.js';

/** Largest PAX or GNU long-name payload we hold in memory (they are metadata, never file data). */
const MAX_META_BYTES = 16 * 1024 * 1024;

const HEADER_ONLY_TYPES: ReadonlySet<string> = new Set([TYPE.hardlink, TYPE.symlink, TYPE.char, TYPE.block, TYPE.dir, TYPE.fifo]);

/** Pull-style reader over an async iterable of chunks; slices are views into the input chunks. */
export class ByteSource {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  private ended = false;
  /** Bytes handed out so far. */
  offset = 0;
  /** Bytes received from the input so far (≥ offset). */
  received = 0;

  constructor(input: AsyncIterable<Uint8Array>, private readonly onChunk?: (chunk: Buffer) => void) {
    this.iterator = input[Symbol.asyncIterator]();
  }

  /** Makes sure there are unread bytes in `chunk`; false at end of input. */
  private async fill(): Promise<boolean> {
    while (this.pos >= this.chunk.length) {
      if (this.ended) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const value = next.value;
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.received += chunk.length;
      this.onChunk?.(chunk);
      this.chunk = chunk;
      this.pos = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least 1) from the current chunk, without copying; null at end of input. */
  async readSome(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const length = Math.min(max, this.chunk.length - this.pos);
    const slice = this.chunk.subarray(this.pos, this.pos + length);
    this.pos += length;
    this.offset += length;
    return slice;
  }

  /** Exactly `n` bytes, or fewer if the input ends first. */
  async read(n: number): Promise<Buffer> {
    const first = await this.readSome(n);
    if (first === null) return Buffer.alloc(0);
    if (first.length === n) return first;
    const parts = [first];
    let have = first.length;
    while (have < n) {
      const part = await this.readSome(n - have);
      if (part === null) break;
      parts.push(part);
      have += part.length;
    }
    return Buffer.concat(parts, have);
  }

  /** Reads and discards everything left (so that observers see every input byte). */
  async drain(): Promise<void> {
    while ((await this.readSome(Number.MAX_SAFE_INTEGER)) !== null);
  }

  /** Like drain, and returns the offset of the first non-zero byte it read, if any. */
  async drainFindingData(): Promise<number | undefined> {
    let found: number | undefined;
    for (;;) {
      const at = this.offset;
      const slice = await this.readSome(Number.MAX_SAFE_INTEGER);
      if (slice === null) return found;
      if (found === undefined) {
        const index = slice.findIndex((byte) => byte !== 0);
        if (index >= 0) found = at + index;
      }
    }
  }

  /** Stops reading early: lets the input release its resources. */
  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }
}

export interface TarEntry {
  /** Effective path (PAX `path`, `GNU.sparse.name`, GNU long name, or the header name), binary string. */
  path: string;
  /** Effective link target (PAX `linkpath`, GNU long link, or the header linkname), binary string. */
  linkpath: string;
  typeflag: string;
  /** The header block as parsed (before PAX/GNU overrides). */
  header: TarHeader;
  /** This entry's own PAX 'x' records, in order. For a 'g' entry: the global records it carries. */
  pax: PaxRecord[];
  /** Global PAX records in effect for this entry (from earlier 'g' headers). */
  globalPax: PaxRecord[];
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (may be fractional when it comes from PAX). */
  mtime: number;
  uname: string;
  gname: string;
  /** Data bytes after the header blocks (PAX `size` wins over the header). */
  size: number;
  /** Byte offset of this entry's first block (its first PAX/GNU extension block, if any). */
  offset: number;
  /**
   * The raw bytes of every block before the data: PAX/GNU extension entries (with their data),
   * the header, and GNU sparse extension blocks. Views into the input: copy what you keep.
   */
  meta: Buffer[];
  /**
   * The data plus its padding to whole blocks, as raw slices of the input. Read it before asking
   * the reader for the next entry, or leave it: the reader skips what was not read.
   */
  body(): AsyncGenerator<Buffer, void, undefined>;
  /** The header block itself (also in `meta`), and old GNU sparse extension blocks after it. */
  headerBlock: Buffer;
  sparseExtensions: Buffer[];
}

const corrupt = (offset: number, what: string) =>
  userError('E_TAR', `layer tar is corrupt at byte ${offset}: ${what}`, {
    hint: 'the file is damaged or is not a tar archive; fetch or export it again',
  });

const truncated = (offset: number) =>
  userError('E_TAR', `layer tar is truncated: it ends at byte ${offset} inside an entry or before the end-of-archive marker`, {
    hint: 'the download or export was cut short; fetch or export it again',
  });

const numberOr = (value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
};

/**
 * Iterates the entries of a tar stream. PAX 'g' headers are yielded as entries of typeflag 'g'
 * (so a copier can pass them on); 'x', 'L' and 'K' are folded into the entry they describe.
 * Stops at the end-of-archive marker and then drains the rest of the input (padding), so that
 * `source.onChunk` observers see every byte. Throws user errors (code E_TAR) on corrupt or
 * truncated input.
 */
export async function* readTar(source: ByteSource): AsyncGenerator<TarEntry, void, undefined> {
  let globalPax: PaxRecord[] = [];
  let pendingPax: PaxRecord[] | null = null;
  let pendingName: string | null = null;
  let pendingLink: string | null = null;
  let pendingMeta: Buffer[] = [];
  let pendingOffset = -1;
  let sawEntry = false;

  const readMetaData = async (header: TarHeader, offset: number): Promise<Buffer> => {
    if (header.size > MAX_META_BYTES) throw corrupt(offset, `extended header of ${header.size} bytes is implausibly large`);
    const data = await source.read(padded(header.size));
    if (data.length < padded(header.size)) throw truncated(source.offset);
    return data;
  };

  for (;;) {
    const offset = source.offset;
    const block = await source.read(BLOCK);
    if (block.length === 0) {
      if (!sawEntry && pendingMeta.length === 0 && offset === 0) {
        throw userError('E_TAR', 'layer tar is empty (0 bytes)', { hint: 'the file is damaged; fetch or export it again' });
      }
      throw truncated(offset);
    }
    if (block.length < BLOCK) {
      if (offset === 0) {
        throw userError('E_TAR', `layer tar is ${block.length} bytes long, shorter than one tar header: it is not a tar archive, or it was cut short`, {
          hint: 'check that the file (or the compressed data in it) is a tar archive; fetch or export it again',
        });
      }
      throw truncated(source.offset);
    }

    let header: TarHeader | null;
    try {
      header = parseHeader(block);
    } catch (error) {
      if (error instanceof TarFormatError) {
        throw corrupt(offset, offset === 0 ? `${error.message} (not a tar archive?)` : error.message);
      }
      throw error;
    }
    if (header === null) {
      // End of archive: one zero block (a second one normally follows). Anything after it is
      // padding to the record size; read it all so the digest covers the whole file.
      if (pendingMeta.length > 0) throw corrupt(offset, 'extended header without the entry it describes');
      if (!sawEntry) {
        // An archive with no entries is only zero blocks. Data after a leading zero block means
        // this is something else (a disk image, an ISO, a compressed file that is not a tar).
        const dataAt = await source.drainFindingData();
        if (dataAt !== undefined) {
          throw userError('E_TAR', `layer tar is not a tar archive: it starts with a zero block, and data follows at byte ${dataAt}`, {
            hint: 'check that the file (or the compressed data in it) is a tar archive; export it again',
          });
        }
        return;
      }
      await source.drain();
      return;
    }
    if (pendingOffset < 0) pendingOffset = offset;

    switch (header.typeflag) {
      case TYPE.paxLocal: {
        const data = await readMetaData(header, offset);
        try {
          pendingPax = [...(pendingPax ?? []), ...parsePax(data.subarray(0, header.size))];
        } catch (error) {
          if (error instanceof TarFormatError) throw corrupt(offset, error.message);
          throw error;
        }
        pendingMeta.push(block, data);
        continue;
      }
      case TYPE.gnuLongName:
      case TYPE.gnuLongLink: {
        const data = await readMetaData(header, offset);
        const nul = data.indexOf(0);
        const text = data.subarray(0, nul >= 0 && nul < header.size ? nul : header.size).toString('latin1');
        if (header.typeflag === TYPE.gnuLongName) pendingName = text;
        else pendingLink = text;
        pendingMeta.push(block, data);
        continue;
      }
      case TYPE.paxGlobal: {
        const data = await readMetaData(header, offset);
        let records: PaxRecord[];
        try {
          records = parsePax(data.subarray(0, header.size));
        } catch (error) {
          if (error instanceof TarFormatError) throw corrupt(offset, error.message);
          throw error;
        }
        globalPax = mergePax(globalPax, records);
        sawEntry = true;
        yield {
          path: '',
          linkpath: '',
          typeflag: TYPE.paxGlobal,
          header,
          pax: records,
          globalPax,
          mode: 0,
          uid: 0,
          gid: 0,
          mtime: 0,
          uname: '',
          gname: '',
          size: 0,
          offset,
          meta: [block, data],
          body: async function* () {},
          headerBlock: block,
          sparseExtensions: [],
        };
        if (pendingOffset === offset) pendingOffset = -1;
        continue;
      }
    }

    const meta = pendingMeta;
    meta.push(block);
    const sparseExtensions: Buffer[] = [];
    if (header.gnuSparseExtended) {
      // Old GNU sparse files: more sparse map blocks follow the header, before the data.
      for (;;) {
        const extension = await source.read(BLOCK);
        if (extension.length < BLOCK) throw truncated(source.offset);
        meta.push(extension);
        sparseExtensions.push(extension);
        if (!gnuSparseExtensionContinues(extension)) break;
      }
    }

    const pax = pendingPax ?? [];
    const effective = pax.length > 0 ? mergePax(globalPax, pax) : globalPax;
    // Links, devices, fifos and directories never carry data (as Go's and Python's readers assume).
    const headerOnly = HEADER_ONLY_TYPES.has(header.typeflag);
    const size = headerOnly ? 0 : numberOr(paxValue(effective, 'size'), header.size);
    if (!Number.isSafeInteger(size) || size < 0) throw corrupt(offset, 'entry size is invalid');
    let remaining = padded(size);

    const entry: TarEntry = {
      path: paxValue(effective, 'GNU.sparse.name') ?? paxValue(effective, 'path') ?? pendingName ?? header.name,
      linkpath: paxValue(effective, 'linkpath') ?? pendingLink ?? header.linkname,
      typeflag: header.typeflag,
      header,
      pax,
      globalPax,
      mode: header.mode,
      uid: numberOr(paxValue(effective, 'uid'), header.uid),
      gid: numberOr(paxValue(effective, 'gid'), header.gid),
      mtime: numberOr(paxValue(effective, 'mtime'), header.mtime),
      uname: paxValue(effective, 'uname') ?? header.uname,
      gname: paxValue(effective, 'gname') ?? header.gname,
      size,
      offset: pendingOffset,
      meta,
      body: async function* () {
        while (remaining > 0) {
          const slice = await source.readSome(remaining);
          if (slice === null) throw truncated(source.offset);
          remaining -= slice.length;
          yield slice;
        }
      },
      headerBlock: block,
      sparseExtensions,
    };
    pendingPax = null;
    pendingName = null;
    pendingLink = null;
    pendingMeta = [];
    pendingOffset = -1;
    sawEntry = true;

    yield entry;

    // Skip whatever data the consumer left unread.
    while (remaining > 0) {
      const slice = await source.readSome(remaining);
      if (slice === null) throw truncated(source.offset);
      remaining -= slice.length;
    }
  }
}

// Read-only access to the files of an image source that is a directory (oci:DIR) or a tar archive
// (oci-archive:, docker-archive:). An archive is indexed once by reading its headers only (data
// blocks are skipped with positioned reads), and each member is then streamed from its offset:
// nothing is extracted to disk.

import { createReadStream } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { errnoCode, userError } from '../../errors.js';
import { BLOCK, TYPE, TarFormatError, padded, parseHeader } from '../../tar/header.js';
import { paxValue, parsePax } from '../../tar/pax.js';

export interface FileTree {
  /** For messages. */
  readonly description: string;
  exists(path: string): Promise<boolean>;
  /** Whole small file (JSON documents). */
  read(path: string, limit?: number): Promise<Buffer>;
  /** A stream of one file's bytes. */
  stream(path: string): AsyncIterable<Uint8Array>;
  size(path: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Largest JSON document read into memory (manifests, configs, indexes). */
export const MAX_DOCUMENT = 16 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;

const missing = (tree: string, path: string) =>
  userError('E_BAD_SOURCE', `${tree} has no ${path}`, { hint: 'the layout or archive is incomplete or not of the kind named; check the source' });

const tooLarge = (tree: string, path: string) =>
  userError('E_BAD_SOURCE', `${path} in ${tree} is too large for an image document`, { hint: 'the source is damaged; check it' });

/** Member names as written by tools: `./blobs/x`, `blobs//x` → `blobs/x`. */
const clean = (path: string) => normalize(path).replace(/^(\.\/)+/, '').replace(/\/+$/, '');

export class DirTree implements FileTree {
  constructor(readonly root: string) {}
  get description() {
    return `directory ${this.root}`;
  }
  private path(path: string) {
    const relative = clean(path);
    if (relative.startsWith('../') || relative === '..' || relative.startsWith('/')) throw missing(this.description, path);
    return join(this.root, relative);
  }
  async exists(path: string) {
    return (await stat(this.path(path)).catch(() => undefined))?.isFile() ?? false;
  }
  async size(path: string) {
    return (await stat(this.path(path)).catch(() => undefined))?.size;
  }
  async read(path: string, limit = MAX_DOCUMENT) {
    const size = await this.size(path);
    if (size === undefined) throw missing(this.description, path);
    if (size > limit) throw tooLarge(this.description, path);
    return readFile(this.path(path));
  }
  stream(path: string): AsyncIterable<Uint8Array> {
    return createReadStream(this.path(path), { highWaterMark: READ_CHUNK });
  }
  async close() {}
}

interface Member {
  offset: number;
  size: number;
}

export class TarTree implements FileTree {
  private constructor(
    readonly file: string,
    private readonly members: Map<string, Member>,
  ) {}

  get description() {
    return `archive ${this.file}`;
  }

  /** Indexes the regular files of a tar archive (uncompressed, as docker save and skopeo write it). */
  static async open(file: string): Promise<TarTree> {
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      throw userError('E_BAD_SOURCE', `cannot open ${file}: ${errnoCode(error) === 'ENOENT' ? 'it does not exist' : (error as Error).message}`, { hint: 'check the path' });
    }
    try {
      return new TarTree(file, await indexTar(handle, file));
    } finally {
      await handle.close();
    }
  }

  private member(path: string): Member | undefined {
    return this.members.get(clean(path));
  }
  async exists(path: string) {
    return this.member(path) !== undefined;
  }
  async size(path: string) {
    return this.member(path)?.size;
  }
  async read(path: string, limit = MAX_DOCUMENT) {
    const member = this.member(path);
    if (!member) throw missing(this.description, path);
    if (member.size > limit) throw tooLarge(this.description, path);
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(member.size);
      const { bytesRead } = await handle.read(buffer, 0, member.size, member.offset);
      if (bytesRead !== member.size) throw truncatedArchive(this.file);
      return buffer;
    } finally {
      await handle.close();
    }
  }
  stream(path: string): AsyncIterable<Uint8Array> {
    const member = this.member(path);
    if (!member) throw missing(this.description, path);
    if (member.size === 0) return (async function* () {})();
    return createReadStream(this.file, { start: member.offset, end: member.offset + member.size - 1, highWaterMark: READ_CHUNK });
  }
  async close() {}
}

const truncatedArchive = (file: string) =>
  userError('E_BAD_SOURCE', `archive ${file} is truncated`, { hint: 'the file was cut short; export or copy it again' });

async function indexTar(handle: FileHandle, file: string): Promise<Map<string, Member>> {
  const members = new Map<string, Member>();
  const { size: fileSize } = await handle.stat();
  const block = Buffer.alloc(BLOCK);
  let offset = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  let globalPath: string | undefined;
  const readMeta = async (size: number, at: number) => {
    if (size > MAX_DOCUMENT) throw notTar(file, `an extended header of ${size} bytes at byte ${at}`);
    const data = Buffer.alloc(size);
    const { bytesRead } = await handle.read(data, 0, size, at);
    if (bytesRead !== size) throw truncatedArchive(file);
    return data;
  };
  for (;;) {
    const { bytesRead } = await handle.read(block, 0, BLOCK, offset);
    if (bytesRead === 0 && offset > 0) break; // no end marker: tolerated, as GNU tar does
    if (bytesRead < BLOCK) throw truncatedArchive(file);
    let header;
    try {
      header = parseHeader(block);
    } catch (error) {
      if (error instanceof TarFormatError) throw notTar(file, `${error.message} at byte ${offset}`);
      throw error;
    }
    if (header === null) break;
    const dataOffset = offset + BLOCK;
    let size = header.size;
    if (header.typeflag === TYPE.paxLocal || header.typeflag === TYPE.paxGlobal) {
      let records;
      try {
        records = parsePax(await readMeta(size, dataOffset));
      } catch (error) {
        if (error instanceof TarFormatError) throw notTar(file, error.message);
        throw error;
      }
      const path = paxValue(records, 'path');
      if (header.typeflag === TYPE.paxLocal) paxPath = path;
      else if (path !== undefined) globalPath = path;
    } else if (header.typeflag === TYPE.gnuLongName) {
      const data = await readMeta(size, dataOffset);
      const nul = data.indexOf(0);
      longName = data.subarray(0, nul >= 0 ? nul : size).toString('utf8');
    } else if (header.typeflag !== TYPE.gnuLongLink) {
      const name = paxPath ?? longName ?? globalPath ?? Buffer.from(header.name, 'latin1').toString('utf8');
      const isFile = header.typeflag === TYPE.file || header.typeflag === TYPE.oldFile || header.typeflag === TYPE.contiguous;
      if (!isFile) size = 0;
      else {
        if (dataOffset + size > fileSize) throw truncatedArchive(file);
        members.set(clean(name), { offset: dataOffset, size });
      }
      paxPath = undefined;
      longName = undefined;
    }
    offset = dataOffset + padded(size);
  }
  if (members.size === 0) throw notTar(file, 'no files in it');
  return members;
}

const notTar = (file: string, why: string) =>
  userError('E_BAD_SOURCE', `${file} is not a readable tar archive (${why})`, { hint: 'give an uncompressed archive as written by docker save or skopeo' });

/** A directory or an archive. */
export async function openTree(path: string, kind: 'dir' | 'archive'): Promise<FileTree> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw userError('E_BAD_SOURCE', `${path} does not exist`, { hint: 'check the path' });
  if (kind === 'dir') {
    if (!info.isDirectory()) throw userError('E_BAD_SOURCE', `${path} is not a directory`, { hint: 'use oci-archive:FILE for an archive' });
    return new DirTree(path);
  }
  if (!info.isFile()) throw userError('E_BAD_SOURCE', `${path} is not a file`, { hint: 'use oci:DIR for a layout directory' });
  return TarTree.open(path);
}

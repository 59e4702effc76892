// An uncompressed erofs image written from an overlay-format tar stream (tar/overlay-convert.ts),
// in one pass, with no root and nothing unpacked: the layer format whose cold start-up matches
// local disk (docs/performance.md). Debian 12's mkfs.erofs (1.5) reads only directories, and
// unpacking a layer to one needs root to keep its owners and device nodes.
//
// File layout:  block 0: superblock | file data, in tar order | metadata: inodes, each with its
// xattrs and, when it fits in the same block, its data's last partial block ("tail packing":
// small files, directories and symlinks live entirely in the inode's block) | directory blocks
// too large to sit with their inode.
// File data streams to its blocks as the tar is read; tails wait in memory (up to TAIL_BUDGET,
// then they get a block of their own) until the tree is complete and the metadata is laid out.

import { open } from 'node:fs/promises';
import { userError } from '../errors.js';
import { TYPE, TarFormatError, displayName } from '../tar/header.js';
import { XATTR_PREFIX, mergePax, paxValue } from '../tar/pax.js';
import { ByteSource, readTar, type TarEntry } from '../tar/reader.js';
import { normalize } from '../tar/overlay-convert.js';
import { oldGnuSparseMap, pax10SparseMap, type SparseMap } from '../tar/gnu-sparse.js';
import { BLOCK_SIZE, INODE_SIZE, align, encodeDevice, encodeXattrs, storableXattr } from './format.js';
import { ImageFile, MAX_IMAGE_BYTES, tooLarge, writeFailed } from './image-file.js';
import { writeMetadata } from './metadata.js';
import { newNode, type Node } from './tree.js';

/** Tails kept in memory at most, in bytes; later ones take a whole block each. */
const TAIL_BUDGET = 64 * 2 ** 20;
/** A PAX 1.0 sparse map read whole, at most. */
const SPARSE_MAP_MAX = 16 * 2 ** 20;

/** i_xattr_icount is 16 bits: an inode's inline xattrs take at most 12 + 65534 * 4 bytes. */
const MAX_XATTR_BYTES = 12 + 65534 * 4;

const badEntry = (message: string) => userError('E_TAR', message, { hint: 'the layer tar is malformed or hostile; rebuild the image' });

/**
 * Writes the overlay tar `input` as an uncompressed erofs image at `path` (created or truncated).
 * Throws a user error: E_TAR for an entry erofs cannot hold or a tar that is not well formed,
 * E_LAYER_WRITE when the file cannot be written.
 */
export async function writeErofsImage(input: AsyncIterable<Uint8Array>, path: string): Promise<void> {
  const handle = await open(path, 'w', 0o644).catch(writeFailed(path));
  try {
    const writer = new ErofsWriter(new ImageFile(handle, path));
    for await (const entry of readTar(new ByteSource(input))) await writer.add(entry);
    await writer.finish();
  } finally {
    await handle.close();
  }
}

class ErofsWriter {
  private readonly root = newNode('dir');
  private tailBytes = 0;

  constructor(private readonly image: ImageFile) {}

  async add(entry: TarEntry): Promise<void> {
    if (entry.typeflag === TYPE.paxGlobal) return;
    const parts = normalize(entry.path, 'name', entry.path);
    const name = parts.at(-1);
    const parent = this.directory(parts.slice(0, -1), entry.path);
    const existing = name === undefined ? this.root : parent.children!.get(name);
    const records = mergePax(entry.globalPax, entry.pax);
    const attributes = {
      mode: entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      mtime: entry.mtime,
      xattrs: encodeXattrs(
        records.filter((record) => record.key.startsWith(XATTR_PREFIX)).map((record) => ({ name: record.key.slice(XATTR_PREFIX.length), value: record.value })).filter((x) => storableXattr(x.name, x.value)),
      ),
    };
    if (attributes.xattrs.length > MAX_XATTR_BYTES) throw badEntry(`layer tar entry '${displayName(entry.path)}' has ${attributes.xattrs.length} bytes of xattrs, more than a layer file holds for one entry (256 KiB)`);
    if (entry.typeflag === TYPE.dir) {
      if (existing && existing.kind !== 'dir') throw badEntry(`layer tar names '${displayName(entry.path)}' twice`);
      Object.assign(existing ?? this.link(parent, name!, newNode('dir')), attributes);
      return;
    }
    if (name === undefined || existing) throw badEntry(`layer tar names '${displayName(entry.path || './')}' twice`);
    switch (entry.typeflag) {
      case TYPE.hardlink: {
        const target = this.lookup(normalize(entry.linkpath, 'link target', entry.path));
        if (!target || target.kind === 'dir') throw badEntry(`layer tar entry '${displayName(entry.path)}' is a hard link to '${displayName(entry.linkpath)}', which is not a file before it`);
        target.links++;
        parent.children!.set(name, target);
        return;
      }
      case TYPE.symlink:
        // A symlink's mode is always 0777 on Linux, whatever the tar says (tar2sqfs does the same).
        this.link(parent, name, newNode('symlink', { ...attributes, mode: 0o777, target: entry.linkpath, size: entry.linkpath.length }));
        return;
      case TYPE.char:
      case TYPE.block:
        this.link(parent, name, newNode(entry.typeflag === TYPE.char ? 'char' : 'block', { ...attributes, device: encodeDevice(entry.header.devmajor, entry.header.devminor) }));
        return;
      case TYPE.fifo:
        this.link(parent, name, newNode('fifo', attributes));
        return;
      case TYPE.file:
      case TYPE.oldFile:
      case TYPE.contiguous:
      case TYPE.gnuSparse: {
        const node = this.link(parent, name, newNode('file', attributes));
        await this.writeData(node, entry, records);
        return;
      }
      default:
        throw badEntry(`layer tar entry '${displayName(entry.path)}' has type '${entry.typeflag}', which a layer cannot hold`);
    }
  }

  private link(parent: Node, name: string, node: Node): Node {
    parent.children!.set(name, node);
    return node;
  }

  private lookup(parts: string[]): Node | undefined {
    let node: Node | undefined = this.root;
    for (const part of parts) node = node?.children?.get(part);
    return node;
  }

  /** The directory at `parts`, made (root's, 0755, as tar2sqfs's defaults) where the tar has none yet. */
  private directory(parts: string[], path: string): Node {
    let node = this.root;
    for (const part of parts) {
      let child = node.children!.get(part);
      if (!child) node.children!.set(part, (child = newNode('dir')));
      if (child.kind !== 'dir') throw badEntry(`layer tar entry '${displayName(path)}' is below '${displayName(part)}', which is not a directory`);
      node = child;
    }
    return node;
  }

  private async writeData(node: Node, entry: TarEntry, records: ReturnType<typeof mergePax>): Promise<void> {
    const body = bytesOf(entry.body(), entry.size);
    const sparseMajor = paxValue(records, 'GNU.sparse.major');
    if (entry.typeflag === TYPE.gnuSparse || sparseMajor !== undefined || records.some((record) => record.key.startsWith('GNU.sparse.'))) {
      if (entry.typeflag !== TYPE.gnuSparse && sparseMajor !== '1') throw badEntry(`layer tar entry '${displayName(entry.path)}' is a sparse file in the old PAX 0.x form, which strata does not read`);
      await this.writeSparse(node, entry, body, records);
      return;
    }
    if (this.image.end + entry.size > MAX_IMAGE_BYTES) throw tooLarge(this.image.end + entry.size);
    node.size = entry.size;
    const whole = entry.size - (entry.size % BLOCK_SIZE);
    node.block = whole > 0 ? this.image.end / BLOCK_SIZE : 0;
    let written = 0;
    const tail: Buffer[] = [];
    for await (const chunk of body) {
      const toBlocks = Math.min(chunk.length, Math.max(0, whole - written));
      // Slices of the input's chunks, which are never reused, are written within a run; a tail is
      // kept until the end, so it is copied (a slice would keep its whole chunk alive).
      if (toBlocks > 0) await this.image.append(chunk.subarray(0, toBlocks));
      if (toBlocks < chunk.length) tail.push(Buffer.from(chunk.subarray(toBlocks)));
      written += chunk.length;
    }
    if (written !== entry.size) throw badEntry(`layer tar entry '${displayName(entry.path)}' is cut short`);
    if (whole === entry.size) return;
    const last = Buffer.concat(tail);
    if (this.tailBytes + last.length <= TAIL_BUDGET && INODE_SIZE + node.xattrs.length + last.length <= BLOCK_SIZE) {
      node.tail = last;
      this.tailBytes += last.length;
      return;
    }
    if (whole === 0) node.block = this.image.end / BLOCK_SIZE;
    await this.image.append(last);
    await this.image.padToBlock();
  }

  /** A sparse file: its regions written where they belong, the holes left as holes of the image. */
  private async writeSparse(node: Node, entry: TarEntry, body: AsyncGenerator<Buffer>, records: ReturnType<typeof mergePax>): Promise<void> {
    let map: SparseMap;
    let rest: Buffer = Buffer.alloc(0);
    try {
      if (entry.typeflag === TYPE.gnuSparse) map = oldGnuSparseMap(entry);
      else {
        const realsize = Number(paxValue(records, 'GNU.sparse.realsize'));
        let head = Buffer.alloc(0);
        let parsed: ReturnType<typeof pax10SparseMap> | undefined;
        for await (const chunk of body) {
          head = Buffer.concat([head, chunk]);
          try {
            parsed = pax10SparseMap(head, realsize);
            if (parsed.mapBytes > head.length) parsed = undefined;
          } catch (error) {
            if (!(error instanceof TarFormatError) || head.length > SPARSE_MAP_MAX) throw error;
          }
          if (parsed) break;
        }
        if (!parsed || !Number.isSafeInteger(realsize)) throw new TarFormatError('bad PAX 1.0 sparse map');
        map = parsed;
        rest = head.subarray(parsed.mapBytes);
      }
    } catch (error) {
      if (error instanceof TarFormatError) throw badEntry(`layer tar entry '${displayName(entry.path)}' has a bad sparse map: ${error.message}`);
      throw error;
    }
    if (this.image.end + map.realsize > MAX_IMAGE_BYTES) throw tooLarge(this.image.end + map.realsize);
    node.size = map.realsize;
    node.block = this.image.end / BLOCK_SIZE;
    const start = this.image.end;
    const chunks = (async function* () {
      if (rest.length > 0) yield rest;
      yield* body;
    })();
    let pending: Buffer = Buffer.alloc(0);
    let last = 0;
    for (const region of map.regions) {
      if (region.offset < last || region.offset + region.size > map.realsize) throw badEntry(`layer tar entry '${displayName(entry.path)}' has a bad sparse map: regions out of order`);
      if (region.offset > last) await this.image.skipTo(start + region.offset);
      let left = region.size;
      while (left > 0) {
        if (pending.length === 0) {
          const next = await chunks.next();
          if (next.done) throw badEntry(`layer tar entry '${displayName(entry.path)}' is cut short`);
          pending = next.value;
        }
        const take = pending.subarray(0, Math.min(left, pending.length));
        await this.image.append(take);
        pending = pending.subarray(take.length);
        left -= take.length;
      }
      last = region.offset + region.size;
    }
    for await (const chunk of chunks) void chunk;
    await this.image.skipTo(start + align(map.realsize, BLOCK_SIZE));
  }

  async finish(): Promise<void> {
    await writeMetadata(this.root, this.image);
  }
}

/** The first `size` bytes of a tar entry's body (which runs on to a whole 512-byte block). */
async function* bytesOf(body: AsyncGenerator<Buffer>, size: number): AsyncGenerator<Buffer> {
  let left = size;
  for await (const chunk of body) {
    if (left <= 0) continue;
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    yield part;
  }
}

// The on-disk structures of an uncompressed erofs image, encoded byte by byte: the superblock,
// the 64-byte ("extended") inode, inline xattrs and directory blocks. Pure functions; the layout
// (which inode goes where) is image-writer.ts's. Field offsets follow the kernel's erofs_fs.h
// (Documentation/filesystems/erofs.rst describes the layout).

export const BLOCK_BITS = 12;
export const BLOCK_SIZE = 1 << BLOCK_BITS;
/** Inodes are addressed in 32-byte slots from the start of the metadata area: nid = offset / 32. */
export const SLOT_SIZE = 32;
export const INODE_SIZE = 64;
export const DIRENT_SIZE = 12;
const SUPER_OFFSET = 1024;
const SUPER_MAGIC = 0xe0f5e1e2;

/** i_format's data layouts: blocks at raw_blkaddr, or the data right after the inode. */
export const LAYOUT = { plain: 0, inline: 2 } as const;
export type DataLayout = (typeof LAYOUT)[keyof typeof LAYOUT];

/** Directory entry file types (the kernel's FT_* numbering). */
export const FILE_TYPE = { file: 1, dir: 2, char: 3, block: 4, fifo: 5, socket: 6, symlink: 7 } as const;

export const S_IFMT = 0o170000;
export const MODE_TYPE = { file: 0o100000, dir: 0o040000, char: 0o020000, block: 0o060000, fifo: 0o010000, socket: 0o140000, symlink: 0o120000 } as const;

export interface SuperBlock {
  rootNid: number;
  inodes: number;
  blocks: number;
  metaBlock: number;
}

/** Block 0: the superblock at byte 1024 (the first 1024 bytes stay zero, as mkfs.erofs leaves them). */
export function encodeSuperBlock(sb: SuperBlock): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  const at = SUPER_OFFSET;
  block.writeUInt32LE(SUPER_MAGIC, at);
  // checksum (4), feature_compat (8): none; no checksum feature, so the kernel does not check it.
  block.writeUInt8(BLOCK_BITS, at + 12);
  block.writeUInt16LE(sb.rootNid, at + 14);
  block.writeBigUInt64LE(BigInt(sb.inodes), at + 16);
  // build_time (24), build_time_nsec (32): only compact inodes use them.
  block.writeUInt32LE(sb.blocks, at + 36);
  block.writeUInt32LE(sb.metaBlock, at + 40);
  // xattr_blkaddr (44): no shared xattrs. uuid, volume name: none. feature_incompat (80): none.
  return block;
}

export interface InodeFields {
  layout: DataLayout;
  /** i_xattr_icount (xattrCount of the inline xattr area's size). */
  xattrCount: number;
  mode: number;
  size: number;
  /** raw_blkaddr for files, directories and symlinks; the encoded device for device nodes. */
  u: number;
  ino: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
}

export function encodeInode(fields: InodeFields): Buffer {
  const inode = Buffer.alloc(INODE_SIZE);
  inode.writeUInt16LE((fields.layout << 1) | 1, 0); // bit 0: the extended (64-byte) inode
  inode.writeUInt16LE(fields.xattrCount, 2);
  inode.writeUInt16LE(fields.mode, 4);
  inode.writeBigUInt64LE(BigInt(fields.size), 8);
  inode.writeUInt32LE(fields.u >>> 0, 16);
  inode.writeUInt32LE(fields.ino >>> 0, 20);
  inode.writeUInt32LE(fields.uid >>> 0, 24);
  inode.writeUInt32LE(fields.gid >>> 0, 28);
  inode.writeBigUInt64LE(BigInt(fields.mtime), 32);
  inode.writeUInt32LE(fields.mtimeNsec, 40);
  inode.writeUInt32LE(fields.nlink, 44);
  return inode;
}

/** The kernel's new_encode_dev: a 32-bit device number for i_u. */
export const encodeDevice = (major: number, minor: number): number => ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;

/** xattr name prefixes erofs stores as an index (the kernel's EROFS_XATTR_INDEX_*). */
const XATTR_PREFIXES: readonly [string, number][] = [
  ['system.posix_acl_access', 2],
  ['system.posix_acl_default', 3],
  ['user.', 1],
  ['trusted.', 4],
  ['lustre.', 5],
  ['security.', 6],
];

/** The stored prefix of an xattr name: a namespace ('user.' and so on) or one of the two ACL names. */
const prefixOf = (name: string) => XATTR_PREFIXES.find(([prefix]) => (prefix.endsWith('.') ? name.startsWith(prefix) && name.length > prefix.length : name === prefix));

/** Whether erofs can store this xattr (others are left out, as squashfs leaves them out). */
export const storableXattr = (name: string, value: string): boolean => {
  const prefix = prefixOf(name);
  return prefix !== undefined && name.length - prefix[0].length <= 255 && value.length <= 0xffff;
};

/**
 * The inline xattr area of an inode (a 12-byte header, then one entry per xattr padded to 4
 * bytes), or an empty buffer for none. Names and values are binary strings; every name must be
 * storableXattr.
 */
export function encodeXattrs(xattrs: readonly { name: string; value: string }[]): Buffer {
  if (xattrs.length === 0) return Buffer.alloc(0);
  const parts: Buffer[] = [Buffer.alloc(12)];
  for (const { name, value } of xattrs) {
    const [prefix, index] = prefixOf(name)!;
    const suffix = Buffer.from(name.slice(prefix.length), 'latin1');
    const data = Buffer.from(value, 'latin1');
    const entry = Buffer.alloc(align(4 + suffix.length + data.length, 4));
    entry.writeUInt8(suffix.length, 0);
    entry.writeUInt8(index, 1);
    entry.writeUInt16LE(data.length, 2);
    suffix.copy(entry, 4);
    data.copy(entry, 4 + suffix.length);
    parts.push(entry);
  }
  return Buffer.concat(parts);
}

/** i_xattr_icount for an inline xattr area of `bytes` (the kernel: 12 + (icount - 1) * 4). */
export const xattrCount = (bytes: number): number => (bytes === 0 ? 0 : (bytes - 12) / 4 + 1);

export interface DirEntry {
  /** Binary string, compared byte by byte. */
  name: string;
  nid: number;
  type: number;
}

/**
 * A directory's entries ('.' and '..' included) sorted by name, as erofs looks names up (binary
 * search over blocks, then within a block), packed into blocks: each block holds its entries'
 * 12-byte records, then their names; no record or name crosses a block. Returns the blocks, the
 * last one cut to its used length.
 */
export function packDirectory(entries: readonly DirEntry[]): Buffer[] {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const groups: DirEntry[][] = [];
  let group: DirEntry[] = [];
  let used = 0;
  for (const entry of sorted) {
    const cost = DIRENT_SIZE + entry.name.length;
    if (group.length > 0 && used + cost > BLOCK_SIZE) {
      groups.push(group);
      group = [];
      used = 0;
    }
    group.push(entry);
    used += cost;
  }
  if (group.length > 0) groups.push(group);
  return groups.map((members, index) => {
    const size = members.reduce((sum, entry) => sum + DIRENT_SIZE + entry.name.length, 0);
    const block = Buffer.alloc(index === groups.length - 1 ? size : BLOCK_SIZE);
    let nameAt = members.length * DIRENT_SIZE;
    members.forEach((entry, i) => {
      block.writeBigUInt64LE(BigInt(entry.nid), i * DIRENT_SIZE);
      block.writeUInt16LE(nameAt, i * DIRENT_SIZE + 8);
      block.writeUInt8(entry.type, i * DIRENT_SIZE + 10);
      nameAt += block.write(entry.name, nameAt, 'latin1');
    });
    return block;
  });
}

/** The size in bytes of a directory's data (packDirectory's blocks, the last one cut). */
export const directorySize = (blocks: readonly Buffer[]): number => blocks.reduce((sum, block) => sum + block.length, 0);

export const align = (value: number, to: number): number => Math.ceil(value / to) * to;

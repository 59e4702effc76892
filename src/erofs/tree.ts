// The tree an erofs image is written from: one node per inode (hard links share theirs), built
// from the layer's tar entries by image-writer.ts and laid out by metadata.ts.

import { LAYOUT, MODE_TYPE, type DataLayout } from './format.js';

export type Kind = keyof typeof MODE_TYPE;

export interface Node {
  kind: Kind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Buffer;
  /** Names this inode has (hard links); directories: 2 + subdirectories. */
  links: number;
  size: number;
  /** Files: the first block of the data's whole blocks (0 when there are none). */
  block: number;
  /** The data's last partial block, kept for the inode's own block; undefined: all in blocks. */
  tail?: Buffer;
  /** Symlink target (binary string). */
  target?: string;
  /** Device nodes: the encoded device number. */
  device: number;
  children?: Map<string, Node>;
  // Set when the metadata is laid out:
  nid: number;
  layout: DataLayout;
  ino: number;
  /** Directories: their packed blocks. */
  directory?: Buffer[];
}
const NO_XATTRS = Buffer.alloc(0);

export const newNode = (kind: Kind, fields: Partial<Node> = {}): Node => ({
  kind,
  mode: kind === 'dir' ? 0o755 : 0o644,
  uid: 0,
  gid: 0,
  mtime: 0,
  xattrs: NO_XATTRS,
  links: 1,
  size: 0,
  block: 0,
  device: 0,
  nid: 0,
  layout: LAYOUT.plain,
  ino: 0,
  ...(kind === 'dir' ? { children: new Map<string, Node>() } : {}),
  ...fields,
});

// The metadata of an erofs image, laid out once the tree is complete: inodes in depth-first
// order after the file data, each with its xattrs and, where it fits in the inode's block, its
// inline data (a file's last partial block, a small directory, a symlink's target); directories
// and symlinks too large for that get blocks after the inodes. Then the superblock.

import {
  BLOCK_SIZE,
  FILE_TYPE,
  INODE_SIZE,
  LAYOUT,
  MODE_TYPE,
  SLOT_SIZE,
  align,
  directorySize,
  encodeInode,
  encodeSuperBlock,
  packDirectory,
  xattrCount,
} from './format.js';
import { MAX_IMAGE_BYTES, tooLarge, type ImageFile } from './image-file.js';
import type { Node } from './tree.js';

/**
 * Lays the tree's metadata out after the data written so far and writes it, then the superblock:
 * the image is complete.
 */
export async function writeMetadata(root: Node, image: ImageFile): Promise<void> {
  await image.padToBlock();
  const metaBlock = image.end / BLOCK_SIZE;
  const nodes = inodeOrder(root);
  nodes.forEach((node, index) => (node.ino = index + 1));

  // Directory sizes do not depend on the nids their entries will hold: pack once with zeros to
  // learn them, again with the real nids once every inode has its place.
  for (const node of nodes) if (node.kind === 'dir') node.directory = packDirectory(directoryEntries(node, node));
  // Slot 0 stays empty: no inode has nid 0.
  let offset = SLOT_SIZE;
  for (const node of nodes) {
    const inline = inlineData(node);
    const record = INODE_SIZE + node.xattrs.length + (inline?.length ?? 0);
    node.layout = inline ? LAYOUT.inline : LAYOUT.plain;
    // An inode, its xattrs and its inline data share one block (the kernel reads inline data
    // from the inode's block only); a record larger than a block (large xattrs) starts one.
    if (record > BLOCK_SIZE || (offset % BLOCK_SIZE) + record > BLOCK_SIZE) offset = align(offset, BLOCK_SIZE);
    node.nid = offset / SLOT_SIZE;
    offset += align(record, SLOT_SIZE);
  }
  if (root.nid > 0xffff) throw new Error('erofs: the root inode is past nid 65535');
  const parents = new Map<Node, Node>();
  for (const node of nodes) for (const child of node.children?.values() ?? []) if (child.kind === 'dir') parents.set(child, node);
  let nextBlock = metaBlock + align(offset, BLOCK_SIZE) / BLOCK_SIZE;
  const outOfLine: { block: number; data: Buffer }[] = [];
  for (const node of nodes) {
    if (node.kind === 'dir') {
      node.directory = packDirectory(directoryEntries(node, parents.get(node) ?? node));
      node.size = directorySize(node.directory);
    }
    if (node.layout === LAYOUT.plain && (node.kind === 'dir' || node.kind === 'symlink')) {
      const data = node.kind === 'dir' ? Buffer.concat(node.directory!.map((block) => padBlock(block))) : padBlock(Buffer.from(node.target!, 'latin1'));
      node.block = nextBlock;
      outOfLine.push({ block: nextBlock, data });
      nextBlock += data.length / BLOCK_SIZE;
    }
  }

  if (nextBlock * BLOCK_SIZE > MAX_IMAGE_BYTES) throw tooLarge(nextBlock * BLOCK_SIZE);
  const meta = Buffer.alloc(align(offset, BLOCK_SIZE));
  for (const node of nodes) {
    const at = node.nid * SLOT_SIZE;
    encodeInode({
      layout: node.layout,
      xattrCount: xattrCount(node.xattrs.length),
      mode: MODE_TYPE[node.kind] | node.mode,
      size: node.size,
      u: node.kind === 'char' || node.kind === 'block' ? node.device : node.block,
      ino: node.ino,
      uid: node.uid,
      gid: node.gid,
      mtime: Math.max(0, Math.floor(node.mtime)),
      mtimeNsec: node.mtime > 0 ? Math.round((node.mtime % 1) * 1e9) % 1e9 : 0,
      nlink: node.kind === 'dir' ? 2 + [...node.children!.values()].filter((child) => child.kind === 'dir').length : node.links,
    }).copy(meta, at);
    node.xattrs.copy(meta, at + INODE_SIZE);
    inlineData(node)?.copy(meta, at + INODE_SIZE + node.xattrs.length);
  }
  await image.writeAt(meta, metaBlock * BLOCK_SIZE);
  for (const { block, data } of outOfLine) await image.writeAt(data, block * BLOCK_SIZE);
  await image.writeAt(encodeSuperBlock({ rootNid: root.nid, inodes: nodes.length, blocks: nextBlock, metaBlock }), 0);
  await image.finish(nextBlock * BLOCK_SIZE);
}

/**
 * Every inode once, depth first, names in order: a directory's inodes sit near each other. Without
 * recursion: a layer's paths may be ~30000 directories deep.
 */
function inodeOrder(root: Node): Node[] {
  const seen = new Set<Node>();
  const order: Node[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    order.push(node);
    if (node.children) for (const name of [...node.children.keys()].sort().reverse()) stack.push(node.children.get(name)!);
  }
  return order;
}

function directoryEntries(dir: Node, parent: Node) {
  return [
    { name: '.', nid: dir.nid, type: FILE_TYPE.dir },
    { name: '..', nid: parent.nid, type: FILE_TYPE.dir },
    ...[...dir.children!].map(([name, child]) => ({ name, nid: child.nid, type: FILE_TYPE[child.kind] })),
  ];
}

/** The data that goes right after the inode, when all of it fits in the inode's block. */
function inlineData(node: Node): Buffer | undefined {
  const room = BLOCK_SIZE - INODE_SIZE - node.xattrs.length;
  if (node.kind === 'file') return node.tail;
  if (node.kind === 'symlink') return node.target!.length <= room ? Buffer.from(node.target!, 'latin1') : undefined;
  if (node.kind === 'dir') return node.directory!.length === 1 && node.directory![0].length <= room ? node.directory![0] : undefined;
  return undefined;
}

const padBlock = (data: Buffer): Buffer => (data.length % BLOCK_SIZE === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK_SIZE - (data.length % BLOCK_SIZE))]));

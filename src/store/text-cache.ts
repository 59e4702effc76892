// Small store files (tags, manifests, image configs) read again only when they changed. The node
// agent serves many jobs of few images, and reading a file costs four metadata round trips (open,
// fstat, read, close: on Lustre, each one to a server); a stat is one. A file is the same when its
// inode, size and change time (ns) are: strata replaces store files by rename (a new inode), and
// any write or chmod moves the change time.

import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';

interface Kept {
  identity: string;
  text: string;
}

/** Enough for the tags, manifests and configs of the images a node runs at once (bytes). */
const MAX_KEPT_BYTES = 8 << 20;
/** Larger files are not kept (a store file this size is not a manifest). */
const MAX_TEXT = 1 << 20;

const kept = new Map<string, Kept>();
let keptBytes = 0;

const identityOf = (info: BigIntStats) => `${info.dev}:${info.ino}:${info.size}:${info.ctimeNs}`;

/**
 * The text of the file at `path` (UTF-8). `noFollow`: a symbolic link as the last component is
 * refused with ELOOP, as open(O_NOFOLLOW) refuses it. Errors are those of reading the file.
 */
export async function readStoreText(path: string, { noFollow }: { noFollow: boolean }): Promise<string> {
  const known = kept.get(path);
  if (known) {
    const info = await (noFollow ? lstat : stat)(path, { bigint: true }).catch(() => undefined);
    if (info?.isFile() && identityOf(info) === known.identity) return known.text;
    forget(path);
  }
  const handle = await open(path, constants.O_RDONLY | (noFollow ? constants.O_NOFOLLOW : 0));
  try {
    const info = await handle.stat({ bigint: true });
    const text = await handle.readFile('utf8');
    // Kept only if nothing changed it while it was read.
    if (info.isFile() && text.length <= MAX_TEXT && BigInt(Buffer.byteLength(text)) === info.size) remember(path, { identity: identityOf(info), text });
    return text;
  } finally {
    await handle.close();
  }
}

function remember(path: string, entry: Kept) {
  forget(path);
  // The oldest go first (a Map iterates in insertion order).
  while (kept.size && keptBytes + entry.text.length > MAX_KEPT_BYTES) forget(kept.keys().next().value!);
  kept.set(path, entry);
  keptBytes += entry.text.length;
}

function forget(path: string) {
  const entry = kept.get(path);
  if (!entry) return;
  keptBytes -= entry.text.length;
  kept.delete(path);
}

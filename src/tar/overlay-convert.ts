// OCI layer tar → "overlay-format" tar, streaming: what tar2sqfs turns into a squashfs layer that
// overlayfs stacks directly (image-spec layer.md; contracts.md 3.7 and 4).
//
//   dir/.wh.NAME       → char device 0:0 `dir/NAME` (the whiteout's uid/gid/mtime); `.wh.NAME` is dropped
//   dir/.wh..wh..opq   → xattr trusted.overlay.opaque=y on `dir`
//   any dir holding a whiteout (either kind) also gets trusted.overlay.origin="" so that overlayfs
//   hides stray whiteouts in directories that exist only in this layer (kernel b79e05aaa166)
//
// Files, symlinks, hard links, devices and fifos pass through byte for byte as they stream, but for
// old GNU sparse files with base-256 map numbers (files past 8 GiB), which get the PAX 1.0 sparse
// form that tar2sqfs reads (gnu-sparse.ts).
// Directory entries are header-only, so they are held back (parsed) and written at the end, with
// their xattrs added, parents first, the root (`./`) last: an opaque marker may come after its
// directory, and tar2sqfs accepts a directory entry after entries inside it. Whiteouts are held
// back too, so that one naming something this same layer also creates can be resolved.
//
// Memory: one string per entry name (for duplicate, conflict and hard link checks), nothing per
// byte of file data.

import { createHash } from 'node:crypto';
import { userError } from '../errors.js';
import { TYPE, displayName, type HeaderFields } from './header.js';
import { XATTR_PREFIX, mergePax, type PaxRecord } from './pax.js';
import { needsSparseRewrite, sparseAsPax10 } from './gnu-sparse.js';
import { ByteSource, readTar } from './reader.js';
import { END_OF_ARCHIVE, encodeEntryHeader } from './writer.js';

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
export const OVERLAY_ORIGIN_XATTR = 'trusted.overlay.origin';
/**
 * Put on every layer's root directory so the squashfs always has an xattr table: without one the
 * kernel answers listxattr on every inode with EOPNOTSUPP (getfattr, cp -a, rsync -X fail in the
 * container). The layer root is never what a job sees as `/` (that is the upper's root).
 */
export const LAYER_MARKER_XATTR = 'trusted.strata.layer';

export interface OverlayConvertResult {
  /** sha256 of the input tar bytes (all of them, end padding included): the OCI diff_id. */
  diffId: string;
  /** Bytes of input tar read. */
  bytesIn: number;
  /** Bytes of overlay tar written. */
  bytesOut: number;
  /** Entries written (held-back and synthesized directories included). */
  entries: number;
  /** Whiteouts written as char 0:0 devices. */
  whiteouts: number;
  /** Directories marked opaque. */
  opaqueDirs: number;
}

export interface OverlayConvertOptions {
  /** Give the root directory LAYER_MARKER_XATTR (creating a root entry if the tar has none). */
  markRoot?: boolean;
  /** Called once the whole input was read and the last output chunk was yielded. */
  onComplete?: (result: OverlayConvertResult) => void;
}

/** Output is gathered into chunks of about this size (large data slices are passed as they are). */
const OUTPUT_CHUNK = 256 * 1024;

interface HeldDir {
  /** PAX records to write: globals in effect plus the entry's own, minus path/size/linkpath. */
  records: PaxRecord[];
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  /** No entry in the input: created here because it needs xattrs. */
  synthesized: boolean;
}

interface Whiteout {
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  /** Input path, for messages. */
  source: string;
}

const badEntry = (message: string, hint = 'the layer tar is malformed or hostile; rebuild the image') => userError('E_TAR', message, { hint });

/**
 * Normalises an entry name: `./a//b/` → `a/b`, the root → ''. Rejects absolute names and `..`.
 * Returns the components.
 */
export function normalize(raw: string, what: string, entryPath: string): string[] {
  if (raw.startsWith('/')) {
    throw badEntry(`layer tar entry '${displayName(entryPath)}' has an absolute ${what} '${displayName(raw)}'`);
  }
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw badEntry(`layer tar entry '${displayName(entryPath)}' has a ${what} with a '..' component: '${displayName(raw)}'`);
  }
  return parts;
}

const parentOf = (path: string): string => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
};

const show = (path: string) => (path === '' ? './' : displayName(path));

/** Records a held-back directory's header keeps; the name is rewritten, data-related ones dropped. */
const keepRecord = (record: PaxRecord) =>
  record.key !== 'path' && record.key !== 'linkpath' && record.key !== 'size' && !record.key.startsWith('GNU.sparse.');

/**
 * Converts an OCI layer tar stream into an overlay-format tar stream (see the file comment).
 * Yields output chunks; the generator's return value (also passed to `onComplete`) carries the
 * input's diff_id. Throws a user error (code E_TAR) on corrupt, truncated or unsafe input.
 */
export async function* toOverlayTar(
  input: AsyncIterable<Uint8Array>,
  options: OverlayConvertOptions = {},
): AsyncGenerator<Buffer, OverlayConvertResult, undefined> {
  const hash = createHash('sha256');
  const source = new ByteSource(input, (chunk) => hash.update(chunk));

  const files = new Set<string>(); // every non-directory written so far
  const dirs = new Map<string, HeldDir>();
  const whiteouts = new Map<string, Whiteout>();
  const opaque = new Set<string>();
  const hardlinks: Array<{ path: string; target: string }> = [];

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytesOut = 0;
  let entries = 0;
  const take = (): Buffer => {
    const out = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    bytesOut += out.length;
    return out;
  };
  /** Queues `buf`; yields a chunk when enough is queued. Large buffers go out without a copy. */
  function* emit(buf: Buffer): Generator<Buffer> {
    if (buf.length >= OUTPUT_CHUNK) {
      if (pendingBytes > 0) yield take();
      bytesOut += buf.length;
      yield buf;
      return;
    }
    pending.push(buf);
    pendingBytes += buf.length;
    if (pendingBytes >= OUTPUT_CHUNK) yield take();
  }

  try {
    for await (const entry of readTar(source)) {
      if (entry.typeflag === TYPE.paxGlobal) {
        for (const buf of entry.meta) yield* emit(buf);
        continue;
      }
      const parts = normalize(entry.path, 'path', entry.path);
      const path = parts.join('/');
      const base = parts.length > 0 ? parts[parts.length - 1] : '';

      // Names inside a `.wh.*` directory: AUFS bookkeeping (`.wh..wh.plnk/…`) is dropped like
      // containerd does; anything else there is nonsense.
      const inWhiteoutDir = parts.slice(0, -1).findIndex((part) => part.startsWith(WHITEOUT_PREFIX));
      if (inWhiteoutDir >= 0) {
        if (parts[inWhiteoutDir].startsWith(WHITEOUT_META_PREFIX)) continue;
        throw badEntry(`layer tar entry '${displayName(entry.path)}' lies inside a whiteout '${displayName(parts[inWhiteoutDir])}'`);
      }

      if (base.startsWith(WHITEOUT_PREFIX)) {
        const parent = parts.slice(0, -1).join('/');
        if (base === WHITEOUT_OPAQUE) {
          opaque.add(parent);
        } else if (base.startsWith(WHITEOUT_META_PREFIX)) {
          // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not a whiteout, not content.
        } else {
          const name = base.slice(WHITEOUT_PREFIX.length);
          if (name === '' || name === '.' || name === '..' || name.includes('/')) {
            throw badEntry(`layer tar has a whiteout of '${displayName(name)}' ('${displayName(entry.path)}'), which can not be deleted`);
          }
          const target = parent === '' ? name : `${parent}/${name}`;
          whiteouts.set(target, { uid: entry.uid, gid: entry.gid, mtime: Math.trunc(entry.mtime), uname: entry.uname, gname: entry.gname, source: entry.path });
        }
        continue; // the reader skips any data
      }

      const isDir = entry.typeflag === TYPE.dir || (entry.typeflag === TYPE.oldFile && entry.path.endsWith('/')); // v7: a trailing slash
      if (isDir) {
        if (files.has(path)) throw badEntry(`layer tar has '${show(path)}' both as a directory and as a file`);
        // Duplicate directory entries: the last one wins (what extracting the tar would give).
        dirs.set(path, {
          records: mergePax(entry.globalPax, entry.pax).filter(keepRecord).map((r) => ({ key: r.key, value: r.value })),
          mode: entry.mode,
          uid: entry.uid,
          gid: entry.gid,
          mtime: entry.mtime,
          uname: entry.uname,
          gname: entry.gname,
          synthesized: false,
        });
        continue;
      }

      if (path === '') throw badEntry(`layer tar has a non-directory entry for the root ('${displayName(entry.path)}')`);
      if (files.has(path)) {
        throw badEntry(`layer tar has two entries for '${show(path)}'`, 'OCI layers must not contain duplicate paths; rebuild the image');
      }
      if (dirs.has(path)) throw badEntry(`layer tar has '${show(path)}' both as a directory and as a file`);
      files.add(path);
      if (entry.typeflag === TYPE.hardlink) {
        const target = normalize(entry.linkpath, 'hard link target', entry.path).join('/');
        hardlinks.push({ path, target });
      }
      if (needsSparseRewrite(entry)) {
        // tar2sqfs misreads this map (gnu-sparse.ts); same data, map in the PAX 1.0 form.
        yield* emit(sparseAsPax10(entry, path, entry.pax.filter(keepRecord)));
      } else {
        for (const buf of entry.meta) yield* emit(buf);
      }
      for await (const buf of entry.body()) yield* emit(buf);
      entries++;
    }

    // ---- the end: check the whole layer, then write whiteouts and directories ----------------
    const implicitDirs = new Set<string>();
    const addAncestors = (path: string) => {
      for (let parent = parentOf(path); parent !== '' && !implicitDirs.has(parent); parent = parentOf(parent)) {
        implicitDirs.add(parent);
      }
    };
    for (const path of files) addAncestors(path);
    for (const path of dirs.keys()) addAncestors(path);
    for (const path of whiteouts.keys()) addAncestors(path);
    for (const path of opaque) addAncestors(`${path}/x`);
    for (const path of implicitDirs) {
      if (files.has(path)) throw badEntry(`layer tar has '${show(path)}' both as a directory and as a file`);
    }
    for (const { path, target } of hardlinks) {
      if (!files.has(target)) {
        throw badEntry(
          `layer tar has a hard link '${show(path)}' to '${show(target)}', which is not a file in this layer`,
          'hard links to files of lower layers can not be stored in a squashfs layer; rebuild the image so the link target is in the same layer',
        );
      }
    }

    const origin = new Set<string>();
    const devices: Array<[string, Whiteout]> = [];
    for (const [target, whiteout] of whiteouts) {
      if (files.has(target)) continue; // this layer's own file replaces the lower one anyway
      if (dirs.has(target) || implicitDirs.has(target)) {
        // Deleted, then created again as a directory in this layer: lower contents stay hidden.
        opaque.add(target);
        continue;
      }
      devices.push([target, whiteout]);
      origin.add(parentOf(target));
    }
    for (const path of opaque) origin.add(path);

    let whiteoutCount = 0;
    devices.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [target, whiteout] of devices) {
      const fields: HeaderFields = {
        name: target,
        mode: 0,
        uid: whiteout.uid,
        gid: whiteout.gid,
        size: 0,
        mtime: whiteout.mtime,
        typeflag: TYPE.char,
        uname: whiteout.uname,
        gname: whiteout.gname,
        devmajor: 0,
        devminor: 0,
      };
      yield* emit(encodeEntryHeader(fields));
      whiteoutCount++;
      entries++;
    }

    if (options.markRoot && !dirs.has('')) dirs.set('', { records: [], mode: 0o755, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', synthesized: true });
    for (const path of origin) {
      if (!dirs.has(path)) {
        dirs.set(path, { records: [], mode: 0o755, uid: 0, gid: 0, mtime: 0, uname: '', gname: '', synthesized: true });
      }
    }
    // Parents first: a name sorts after every one of its prefixes. The root ('') comes out first
    // here and is moved to the end.
    const order = [...dirs.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (order[0] === '') order.push(order.shift() as string);
    for (const path of order) {
      const dir = dirs.get(path) as HeldDir;
      const xattrs: PaxRecord[] = [];
      if (opaque.has(path)) xattrs.push({ key: XATTR_PREFIX + OVERLAY_OPAQUE_XATTR, value: 'y' });
      if (origin.has(path)) xattrs.push({ key: XATTR_PREFIX + OVERLAY_ORIGIN_XATTR, value: '' });
      if (path === '' && options.markRoot) xattrs.push({ key: XATTR_PREFIX + LAYER_MARKER_XATTR, value: '1' });
      const name = path === '' ? './' : `${path}/`;
      const fields: HeaderFields = {
        name,
        mode: dir.mode,
        uid: dir.uid,
        gid: dir.gid,
        size: 0,
        mtime: Math.trunc(dir.mtime),
        typeflag: TYPE.dir,
        uname: dir.uname,
        gname: dir.gname,
      };
      const records = mergePax(dir.records, xattrs);
      // A name too long for ustar needs a `path` record; mtime with a fraction or out of range too.
      if (!Number.isInteger(dir.mtime) && !records.some((r) => r.key === 'mtime')) records.push({ key: 'mtime', value: String(dir.mtime) });
      yield* emit(encodeEntryHeader(fields, records));
      entries++;
    }

    yield* emit(END_OF_ARCHIVE);
    if (pendingBytes > 0) yield take();

    const result: OverlayConvertResult = {
      diffId: `sha256:${hash.digest('hex')}`,
      bytesIn: source.received,
      bytesOut,
      entries,
      whiteouts: whiteoutCount,
      opaqueDirs: opaque.size,
    };
    options.onComplete?.(result);
    return result;
  } finally {
    await source.close();
  }
}

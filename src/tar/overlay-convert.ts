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
// The layer means what extracting it over the layers below means (umoci unpack, tar): a later
// entry of the same name replaces the earlier one and whatever this layer put below it; a
// directory that replaced a non-directory starts empty (opaque); whiteouts only delete from the
// layers below, so they never remove this layer's own entries, become opaque markers where this
// layer has a directory, and vanish under a name this layer made a non-directory. An entry below
// such a non-directory is refused, as umoci refuses it. Because file data is already written when
// a later entry replaces it, that case throws NeedsPlan: the caller reads the layer once without
// writing (planOnly), then converts it again following the plan.
//
// Memory: one map key and one tree-set member per entry name (the same string), nothing per byte
// of file data.
// Long (over ~300 lines) on purpose: one state machine over a layer's entries; split, its rules
// (names given twice, whiteouts, opaque dirs, hard links) would have to share its state anyway.

import { createHash } from 'node:crypto';
import { userError } from '../errors.js';
import { TYPE, displayName, type HeaderFields } from './header.js';
import { XATTR_PREFIX, mergePax, type PaxRecord } from './pax.js';
import { needsSparseRewrite, sparseAsPax10 } from './gnu-sparse.js';
import { ByteSource, readTar, type TarEntry } from './reader.js';
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
  /** From a planOnly run. */
  plan?: LayerPlan;
}

export interface OverlayConvertOptions {
  /** Give the root directory LAYER_MARKER_XATTR (creating a root entry if the tar has none). */
  markRoot?: boolean;
  /** Called once the whole input was read and the last output chunk was yielded. */
  onComplete?: (result: OverlayConvertResult) => void;
  /**
   * Read the layer and decide, writing nothing, which entry goes out under which name: the
   * result's `plan`. Needed when a name comes twice (see NeedsPlan).
   */
  planOnly?: boolean;
  /** A plan from a planOnly run over the same bytes: entries it does not list are left out. */
  plan?: LayerPlan;
}

/** Entry ordinal (global PAX headers not counted) → the name it is written as, and for a hard link its target. */
export type LayerPlan = Map<number, { name: string; linkTo?: string }>;

/**
 * Thrown while streaming when a later entry replaces one already written (a name given twice, a
 * directory of this layer replaced by a file): the output can not take it back. The caller
 * reads the layer once more with `planOnly`, then converts it with that plan.
 */
export class NeedsPlan extends Error {
  constructor() {
    super('the layer replaces an entry it already wrote; it needs a planned conversion');
  }
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
    throw badEntry(`layer tar entry '${clip(entryPath)}' has an absolute ${what} '${clip(raw)}'`);
  }
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) {
    throw badEntry(`layer tar entry '${clip(entryPath)}' has a ${what} with a '..' component: '${clip(raw)}'`);
  }
  // Names are binary strings: length is bytes. No Linux file system holds a longer name (NAME_MAX),
  // and tar2sqfs reads no extended header of 64 KiB or more (where such a path has to go).
  const long = parts.find((part) => part.length > NAME_MAX);
  if (long !== undefined) {
    throw badEntry(
      `layer tar entry '${clip(entryPath)}' has a ${what} with a name of ${long.length} bytes; Linux file names are at most ${NAME_MAX} bytes`,
      'no Linux file system can hold it; rebuild the image without that name',
    );
  }
  if (raw.length > MAX_PATH_BYTES) {
    throw badEntry(`layer tar entry '${clip(entryPath)}' has a ${what} of ${raw.length} bytes; strata stores paths of up to ${MAX_PATH_BYTES} bytes`, 'rebuild the image with shorter paths');
  }
  return parts;
}

const NAME_MAX = 255;
/** tar2sqfs rejects extended headers of 65536 bytes or more; leave room for the other records. */
export const MAX_PATH_BYTES = 60_000;
/** A name for a one-line message: at most 80 characters of it. */
const clip = (name: string) => (name.length > 80 ? `${displayName(name.slice(0, 60))}…(${name.length} bytes)` : displayName(name));

const parentOf = (path: string): string => {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
};

const show = (path: string) => (path === '' ? './' : displayName(path));

/** Records a held-back directory's header keeps; the name is rewritten, data-related ones dropped. */
const keepRecord = (record: PaxRecord) =>
  record.key !== 'path' && record.key !== 'linkpath' && record.key !== 'size' && !record.key.startsWith('GNU.sparse.');

/** The header of a non-directory entry written under another name (or as a hard link to `linkTo`). */
function renamedHeader(entry: TarEntry, name: string, linkTo: string | undefined): Buffer {
  const records = entry.pax
    .filter((r) => r.key !== 'path' && r.key !== 'linkpath' && !(linkTo !== undefined && r.key === 'size'))
    .map((r) => (r.key === 'GNU.sparse.name' ? { key: r.key, value: name } : r));
  const sparse10 = records.some((r) => r.key === 'GNU.sparse.name');
  const fields: HeaderFields = {
    name: sparse10 ? entry.header.name : name,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size: linkTo !== undefined ? 0 : entry.size,
    mtime: Math.trunc(entry.mtime),
    typeflag: linkTo !== undefined ? TYPE.hardlink : entry.typeflag,
    linkname: linkTo ?? entry.linkpath,
    uname: entry.uname,
    gname: entry.gname,
    devmajor: entry.header.devmajor,
    devminor: entry.header.devminor,
  };
  if (!Number.isInteger(entry.mtime) && !records.some((r) => r.key === 'mtime')) records.push({ key: 'mtime', value: String(entry.mtime) });
  return encodeEntryHeader(fields, records);
}

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

  // The layer as extraction would leave it, entry by entry ("later wins", as tar and umoci do):
  // live non-directories (path → ordinal of the entry that made that name), live directory
  // entries, and the tree of every live name (implied parents included) for subtree removal.
  // Per entry that is one map key and one set member (the same string).
  const nondirs = new Map<string, number>();
  const linkInode = new Map<number, number>(); // hard link ordinal → its file's ordinal (the inode)
  const dirs = new Map<string, HeldDir>();
  const children = new Map<string, Set<string>>(); // '' is the root
  const whiteouts = new Map<string, Whiteout>();
  const opaque = new Set<string>();
  /** Directories that replaced a non-directory of this layer: extraction had removed the lower one. */
  const replaced = new Set<string>();
  const plan = options.plan;
  const planning = options.planOnly === true;
  let ordinal = -1;

  const link = (path: string) => {
    for (let p = path; p !== ''; p = parentOf(p)) {
      const parent = parentOf(p);
      let set = children.get(parent);
      if (!set) children.set(parent, (set = new Set()));
      if (set.has(p)) return;
      set.add(p);
    }
  };
  const dropName = (path: string) => {
    if (!nondirs.has(path)) return;
    // Streaming, this entry is already in the output: start over with a plan (store/import/squashfs.ts).
    if (!plan && !planning) throw new NeedsPlan();
    nondirs.delete(path);
  };
  /** Removes `path` and everything this layer put below it, as extraction replacing it would. */
  const removeTree = (path: string) => {
    const stack = [path];
    while (stack.length > 0) {
      const p = stack.pop() as string;
      dropName(p);
      dirs.delete(p);
      const below = children.get(p);
      if (below) {
        stack.push(...below);
        children.delete(p);
      }
    }
    children.get(parentOf(path))?.delete(path);
  };
  const nonDirAncestor = (path: string): string | undefined => {
    for (let p = parentOf(path); p !== ''; p = parentOf(p)) if (nondirs.has(p)) return p;
    return undefined;
  };
  const inTree = (path: string) => path === '' || children.get(parentOf(path))?.has(path) === true;

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
        if (!planning) for (const buf of entry.meta) yield* emit(buf);
        continue;
      }
      ordinal++;
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

      // Like umoci and tar: an entry below a non-directory of this same layer can not be extracted.
      const blocker = nonDirAncestor(path);
      if (blocker !== undefined) {
        throw badEntry(`layer tar has '${show(path)}' below '${show(blocker)}', which this layer made a non-directory`, 'the layer tar is malformed; rebuild the image');
      }

      const isDir = entry.typeflag === TYPE.dir || (entry.typeflag === TYPE.oldFile && entry.path.endsWith('/')); // v7: a trailing slash
      if (isDir) {
        if (nondirs.has(path)) {
          removeTree(path); // a directory replaces this layer's file
          replaced.add(path);
        }
        link(path);
        // Duplicate directory entries: the last one's attributes win, the contents stay.
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
      let inode = ordinal;
      if (entry.typeflag === TYPE.hardlink) {
        const target = normalize(entry.linkpath, 'hard link target', entry.path).join('/');
        const live = nondirs.get(target);
        if (live === undefined && (dirs.has(target) || inTree(target))) {
          throw badEntry(`layer tar has a hard link '${show(path)}' to the directory '${show(target)}'`, 'no file system hard-links directories; the layer tar is malformed, rebuild the image');
        }
        if (live === undefined) {
          throw badEntry(
            `layer tar has a hard link '${show(path)}' to '${show(target)}', which is not a file in this layer`,
            'hard links to files of lower layers can not be stored in a squashfs layer; rebuild the image so the link target is in the same layer',
          );
        }
        inode = linkInode.get(live) ?? live; // the file as it is now, even if a later entry replaces its name
        if (target === path) continue; // a link to itself changes nothing
        linkInode.set(ordinal, inode);
      }
      // A later entry of the same name replaces an earlier one (and all that was below it).
      if (nondirs.has(path) || inTree(path)) removeTree(path);
      link(path);
      nondirs.set(path, ordinal);

      if (planning) continue; // the reader skips the data
      let name = path;
      let linkTo: string | undefined;
      if (plan) {
        const decided = plan.get(ordinal);
        if (decided === undefined) continue; // replaced later in this layer: never written
        ({ name, linkTo } = decided);
      }
      const renamed = plan !== undefined && (name !== path || linkTo !== undefined);
      if (needsSparseRewrite(entry)) {
        // tar2sqfs misreads this map (gnu-sparse.ts); same data, map in the PAX 1.0 form.
        yield* emit(sparseAsPax10(entry, name, entry.pax.filter(keepRecord)));
      } else if (renamed) {
        yield* emit(renamedHeader(entry, name, linkTo));
      } else {
        for (const buf of entry.meta) yield* emit(buf);
      }
      if (linkTo === undefined || entry.typeflag !== TYPE.hardlink) {
        for await (const buf of entry.body()) yield* emit(buf);
      }
      entries++;
    }

    // ---- the end: what the layer leaves, as whiteouts and directories ------------------------
    if (planning) {
      // Each surviving inode is written once, at its data entry, under its oldest live name; its
      // other live names become hard links to that one.
      const primary = new Map<number, { ordinal: number; path: string }>(); // inode → its oldest live name
      for (const [path, ord] of nondirs) {
        const inode = linkInode.get(ord) ?? ord;
        const known = primary.get(inode);
        if (!known || ord < known.ordinal) primary.set(inode, { ordinal: ord, path });
      }
      const decided: LayerPlan = new Map();
      for (const [inode, { path }] of primary) decided.set(inode, { name: path });
      for (const [path, ord] of nondirs) {
        const first = primary.get(linkInode.get(ord) ?? ord) as { ordinal: number; path: string };
        if (ord !== first.ordinal) decided.set(ord, { name: path, linkTo: first.path });
      }
      const result = { diffId: `sha256:${hash.digest('hex')}`, bytesIn: source.received, bytesOut: 0, entries: 0, whiteouts: 0, opaqueDirs: 0, plan: decided };
      options.onComplete?.(result);
      return result;
    }

    const isDirAtEnd = (path: string) => dirs.has(path) || (inTree(path) && !nondirs.has(path));
    const origin = new Set<string>();
    // Whiteouts apply to the lower layers only (umoci, containerd): what this layer itself puts
    // at the name stays, a directory of this layer there hides the lower one's contents, and
    // whiteouts under a name this layer made a non-directory have nothing left to hide.
    const deleted = new Set<string>();
    for (const target of whiteouts.keys()) {
      if (nondirs.has(target) || nonDirAncestor(target) !== undefined) continue;
      if (isDirAtEnd(target)) opaque.add(target);
      else deleted.add(target);
    }
    for (const path of replaced) if (isDirAtEnd(path)) opaque.add(path);
    const coveredByAncestor = (path: string) => {
      for (let p = parentOf(path); p !== ''; p = parentOf(p)) if (deleted.has(p)) return true;
      return nonDirAncestor(path) !== undefined;
    };
    for (const path of [...opaque]) {
      if (nondirs.has(path) || deleted.has(path) || coveredByAncestor(path)) opaque.delete(path);
    }
    const devices: Array<[string, Whiteout]> = [];
    for (const target of deleted) {
      if (coveredByAncestor(target)) continue; // the deleted parent takes it along
      devices.push([target, whiteouts.get(target) as Whiteout]);
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

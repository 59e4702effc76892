// `--flatten`: the layers of an image merged into one tar stream, the way overlayfs would show
// them, without unpacking. Layers are read top first: an entry is written unless a layer above
// already wrote that path, deleted it or an ancestor (`.wh.NAME`), made an ancestor opaque
// (`.wh..wh..opq`), or replaced an ancestor by a non-directory. Whiteouts themselves are dropped:
// nothing is below a flattened layer. The result streams on into the usual converter and tar2sqfs.

import { createHash } from 'node:crypto';
import { userError } from '../../errors.js';
import { BLOCK, TYPE, padded, serializeHeader } from '../../tar/header.js';
import { normalize, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../../tar/overlay-convert.js';
import { serializePax, type PaxRecord } from '../../tar/pax.js';
import { ByteSource, readTar } from '../../tar/reader.js';
import { END_OF_ARCHIVE } from '../../tar/writer.js';
import { digestMismatch } from '../sources/verify.js';

export interface FlattenLayer {
  /** Uncompressed layer tar bytes. */
  open(): Promise<AsyncIterable<Uint8Array>>;
  diffId: string;
  what: string;
}

/** A PAX global header setting `records` (an empty value unsets a key). */
function globalHeader(records: PaxRecord[]): Buffer {
  const data = serializePax(records);
  const header = serializeHeader({ name: 'pax_global_header', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, typeflag: TYPE.paxGlobal });
  const out = Buffer.alloc(BLOCK + padded(data.length));
  header.copy(out, 0);
  data.copy(out, BLOCK);
  return out;
}

/** Merges `layers` (base first, as in the manifest) into one tar; checks each layer's diff_id. */
export async function* flattenLayers(layers: FlattenLayer[]): AsyncGenerator<Buffer, void, undefined> {
  const written = new Map<string, boolean>(); // path → is a directory, from layers above
  const deleted = new Set<string>();
  const opaque = new Set<string>();
  const implied = new Set<string>(); // parents of what layers above wrote: a directory there
  const hidden = (path: string, isDir: boolean): boolean => {
    if (written.has(path) || deleted.has(path) || (!isDir && implied.has(path))) return true;
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const ancestor = path.slice(0, slash);
      if (deleted.has(ancestor) || opaque.has(ancestor) || written.get(ancestor) === false) return true;
    }
    return opaque.has('') && path !== '';
  };
  let globals: PaxRecord[] = [];
  for (const layer of [...layers].reverse()) {
    const hash = createHash('sha256');
    const source = new ByteSource(await layer.open(), (chunk) => hash.update(chunk));
    const mine = new Map<string, boolean>();
    const myDeletes: string[] = [];
    const myOpaque: string[] = [];
    const wasNonDir = new Set<string>();
    const skipped = new Set<string>();
    // Global PAX records of one layer must not leak into the next.
    if (globals.length) yield globalHeader(globals.map(({ key }) => ({ key, value: '' })));
    globals = [];
    for await (const entry of readTar(source)) {
      if (entry.typeflag === TYPE.paxGlobal) {
        globals = entry.globalPax;
        for (const part of entry.meta) yield Buffer.from(part);
        continue;
      }
      const parts = normalize(entry.path, 'path', entry.path);
      const path = parts.join('/');
      const base = parts[parts.length - 1] ?? '';
      const parent = parts.slice(0, -1).join('/');
      if (base.startsWith(WHITEOUT_PREFIX)) {
        if (base === WHITEOUT_OPAQUE) myOpaque.push(parent);
        else if (!base.startsWith(WHITEOUT_META_PREFIX)) myDeletes.push(parent ? `${parent}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length));
        continue;
      }
      if (hidden(path, entry.typeflag === TYPE.dir)) {
        skipped.add(path);
        continue;
      }
      if (entry.typeflag === TYPE.hardlink) {
        const target = normalize(entry.linkpath, 'link target', entry.path).join('/');
        if (skipped.has(target) || hidden(target, false)) {
          throw userError('E_FLATTEN', `cannot flatten: ${layer.what} hard-links ${path} to ${target}, which a later layer replaces`, { hint: 'import it without --flatten' });
        }
      }
      mine.set(path, entry.typeflag === TYPE.dir);
      if (entry.typeflag !== TYPE.dir) wasNonDir.add(path);
      for (const part of entry.meta) yield Buffer.from(part);
      for await (const chunk of entry.body()) yield Buffer.from(chunk);
    }
    const diffId = `sha256:${hash.digest('hex')}`;
    if (diffId !== layer.diffId) throw digestMismatch(`uncompressed ${layer.what}`, layer.diffId, diffId);
    for (const [path, isDir] of mine) {
      if (!written.has(path)) written.set(path, isDir);
      for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) implied.add(path.slice(0, slash));
    }
    // A directory this layer first had as a file (or replaced): extraction removed what was below.
    for (const path of wasNonDir) if (mine.get(path) === true) myOpaque.push(path);
    for (const path of myDeletes) deleted.add(path);
    for (const path of myOpaque) opaque.add(path);
  }
  yield END_OF_ARCHIVE;
}

// A job's writable layer (the walker's records, upper-records.ts) as an OCI layer tar: the inverse
// of the import's converter (src/tar/overlay-convert.ts), so the saved layer imports cleanly
// anywhere (image-spec layer.md):
//   character device 0:0 `dir/NAME` (overlay whiteout)   → empty file `dir/.wh.NAME`
//   directory with trusted.overlay.opaque=y              → the directory, then `dir/.wh..wh..opq`
// The upper's own root is not written: the container's `/` keeps the image's owner and mode (the
// upper's root belongs to the job's user only so that they can create top-level entries). A name
// that starts with `.wh.` would read as a whiteout in OCI form, so such an entry is left out with
// a warning rather than turned into a deletion.

import { savedMarkerValue, SAVED_MARKER_XATTR } from '../../store/import/saved-marker.js';
import { TYPE, padded, type HeaderFields } from '../../tar/header.js';
import { XATTR_PREFIX } from '../../tar/pax.js';
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from '../../tar/overlay-convert.js';
import { END_OF_ARCHIVE, encodeEntryHeader } from '../../tar/writer.js';
import type { FileData, UpperRecord } from './upper-records.js';

export interface LayerSummary {
  entries: number;
  whiteouts: number;
  opaqueDirs: number;
  bytes: number;
  /** Entries not saved, with why (sockets, devices, reserved names). */
  skipped: string[];
}

/** Thrown when the walk could not read the layer (the walker's `E` record, or no end record). */
export class SaveReadError extends Error {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const parentOf = (path: string) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/') + 1) : '');
const permissions = (mode: number) => mode & 0o7777;

/**
 * The tar headers for one record (pure). A `file` header is followed by its data, which the
 * caller streams and pads. Returns undefined for records that write nothing, or a reason to skip.
 */
export function ociHeaders(record: UpperRecord): { headers: HeaderFields[] } | { skip: string } | undefined {
  if (record.kind === 'end' || record.kind === 'failed' || record.kind === 'skipped') return undefined;
  const { path } = record;
  if (path === '.') {
    // The layer's root: only an opaque root (nothing of the image below survives) is written.
    if (record.kind === 'dir' && record.opaque) return { headers: [marker(WHITEOUT_OPAQUE, record)] };
    return undefined;
  }
  if (baseName(path).startsWith(WHITEOUT_PREFIX)) return { skip: `${path}: a name starting with ${WHITEOUT_PREFIX} means a deletion in an OCI layer` };
  switch (record.kind) {
    case 'dir': {
      const dir: HeaderFields = { name: `${path}/`, mode: permissions(record.mode), uid: record.uid, gid: record.gid, size: 0, mtime: record.mtime, typeflag: TYPE.dir };
      return { headers: record.opaque ? [dir, marker(`${path}/${WHITEOUT_OPAQUE}`, record)] : [dir] };
    }
    case 'file':
      return { headers: [{ name: path, mode: permissions(record.mode), uid: record.uid, gid: record.gid, size: record.size, mtime: record.mtime, typeflag: TYPE.file }] };
    case 'hardlink':
      return { headers: [{ name: path, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.hardlink, linkname: record.target }] };
    case 'symlink':
      return { headers: [{ name: path, mode: 0o777, uid: record.uid, gid: record.gid, size: 0, mtime: record.mtime, typeflag: TYPE.symlink, linkname: record.target }] };
    case 'whiteout':
      return { headers: [marker(`${parentOf(path)}${WHITEOUT_PREFIX}${baseName(path)}`, record)] };
    case 'fifo':
      return { headers: [{ name: path, mode: permissions(record.mode), uid: record.uid, gid: record.gid, size: 0, mtime: record.mtime, typeflag: TYPE.fifo }] };
  }
}

/** An empty marker file (whiteout or opaque marker) with the owner and time of what it stands for. */
const marker = (name: string, from: { uid: number; gid: number; mtime: number }): HeaderFields => ({ name, mode: 0o644, uid: from.uid, gid: from.gid, size: 0, mtime: from.mtime, typeflag: TYPE.file });

/**
 * The OCI layer tar of a record stream. `summary` is filled in as it goes; a walk that failed or
 * stopped early throws SaveReadError (the tar is then incomplete and must not be kept).
 */
export async function* ociLayerTar(records: AsyncIterable<UpperRecord | FileData>, summary: LayerSummary): AsyncGenerator<Buffer> {
  let fileLeft = 0;
  let keepData = false;
  let ended = false;
  for await (const record of records) {
    if (record.kind === 'data') {
      fileLeft -= record.chunk.length;
      if (keepData) {
        summary.bytes += record.chunk.length;
        yield record.chunk;
        if (fileLeft === 0 && record.chunk.length) {
          const pad = padded(summary.bytes) - summary.bytes;
          summary.bytes += pad;
          if (pad) yield Buffer.alloc(pad);
        }
      }
      continue;
    }
    if (record.kind === 'failed') throw new SaveReadError(`${record.path}: ${record.message}`, record.path);
    if (record.kind === 'end') {
      ended = true;
      continue;
    }
    if (record.kind === 'skipped') {
      summary.skipped.push(`${record.path}: ${record.reason === 'socket' ? 'a socket' : record.reason === 'device' ? 'a device node' : 'on another file system'}`);
      continue;
    }
    const out = ociHeaders(record);
    keepData = false;
    if (record.kind === 'file') fileLeft = record.size;
    if (!out) continue;
    if ('skip' in out) {
      summary.skipped.push(out.skip);
      continue;
    }
    for (const header of out.headers) {
      const bytes = encodeEntryHeader(header);
      summary.entries++;
      summary.bytes += bytes.length;
      yield bytes;
    }
    if (record.kind === 'whiteout') summary.whiteouts++;
    if (record.kind === 'dir' && record.opaque) summary.opaqueDirs++;
    keepData = record.kind === 'file';
  }
  if (!ended) throw new SaveReadError('the walk of the writable layer stopped before its end', '.');
  summary.bytes += END_OF_ARCHIVE.length;
  yield END_OF_ARCHIVE;
}

export const emptySummary = (): LayerSummary => ({ entries: 0, whiteouts: 0, opaqueDirs: 0, bytes: 0, skipped: [] });

/**
 * The layer's root directory carrying the save mark (store/import/saved-marker.ts), for the file
 * form only: tar2sqfs puts a `./` entry's attributes on the squashfs root, with the owner and mode
 * its --defaults give the root anyway.
 */
export const savedMarkerEntry = (base: string): Buffer =>
  encodeEntryHeader({ name: './', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, typeflag: TYPE.dir }, [{ key: `${XATTR_PREFIX}${SAVED_MARKER_XATTR}`, value: savedMarkerValue(base) }]);

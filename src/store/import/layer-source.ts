// Where one layer's bytes come from: a `dir:` tree (tar writes it, in a stable order), a `tar:`
// file, or a stream from elsewhere (a registry, an archive member, the relay). Every kind ends as
// uncompressed tar bytes through decompress.ts.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, userError } from '../../errors.js';
import { TOOLS } from '../../host/tools.js';
import { decompressTar, drain, type TarStream } from './decompress.js';
import { startTool } from '../../host/tool-stream.js';

/**
 * `tar`: a layer tar file (plain, gzip, zstd or xz, detected by magic bytes); `dir`: a root
 * filesystem tree; `stream`: layer tar bytes from elsewhere (a registry, an archive member), also
 * plain, gzip, zstd or xz by magic bytes. A stream's own errors (digest mismatch, broken download)
 * win over whatever they cause downstream.
 */
export type LayerSource =
  | { kind: 'tar' | 'dir'; path: string }
  | { kind: 'stream'; open: () => Promise<AsyncIterable<Uint8Array>>; what: string };

export const READ_CHUNK = 1024 * 1024;

/** `dir:PATH` or `tar:PATH` as typed (the path made absolute). */
export function parseLayerSource(text: string): { kind: 'dir' | 'tar'; path: string } {
  const match = /^(dir|tar):(.+)$/.exec(text);
  if (!match) {
    throw userError('E_BAD_SOURCE', `unsupported import source "${text}"`, {
      hint: 'use docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE, dir:PATH (a root filesystem tree) or tar:PATH (a layer tar)',
    });
  }
  return { kind: match[1] as 'dir' | 'tar', path: resolvePath(match[2]) };
}

/** The `dir:`/`tar:` source `text` names, checked as the calling process sees it. */
export async function localLayerSource(text: string): Promise<{ kind: 'dir' | 'tar'; path: string }> {
  const source = parseLayerSource(text);
  const sourceStat = await stat(source.path).catch(() => undefined);
  if (!sourceStat) throw userError('E_BAD_SOURCE', `import source ${source.path} does not exist`, { hint: 'check the path' });
  if (source.kind === 'dir' && !sourceStat.isDirectory()) {
    throw userError('E_BAD_SOURCE', `${source.path} is not a directory`, { hint: 'use tar:PATH for a tar file' });
  }
  return source;
}

/** A `dir:` source must be a directory, a `tar:` source a file, both readable by this process. */
async function checkSourcePath(source: { kind: 'tar' | 'dir'; path: string }): Promise<void> {
  const info = await stat(source.path).catch((error: unknown) => {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') {
      throw userError('E_BAD_SOURCE', `layer source ${source.path} does not exist`, { hint: 'check the path' });
    }
    throw userError('E_BAD_SOURCE', `cannot read layer source ${source.path}: ${errnoCode(error) ?? String(error)}`, {
      hint: 'check the path and its permissions',
    });
  });
  if (source.kind === 'dir' && !info.isDirectory()) {
    throw userError('E_BAD_SOURCE', `layer source ${source.path} is not a directory`, { hint: 'use a tar source for a tar file' });
  }
  if (source.kind === 'tar' && !info.isFile()) {
    throw userError('E_BAD_SOURCE', `layer source ${source.path} is not a file`, { hint: 'use a dir source for a directory tree' });
  }
}

/** The source as a stream of uncompressed tar bytes, plus the helper process producing it, if any. */
export async function openLayerSource(source: LayerSource): Promise<TarStream & { what: string }> {
  if (source.kind === 'stream') return { ...(await decompressTar(await source.open(), source.what)), what: source.what };
  await checkSourcePath(source);
  if (source.kind === 'dir') {
    // POSIX format for the xattrs; no atime/ctime records, so the same tree gives the same diff_id.
    const child = startTool(
      TOOLS.tar,
      ['--format=posix', '--pax-option=delete=atime,delete=ctime', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '-C', source.path, '-cf', '-', '.'],
      ['ignore', 'pipe', 'pipe'],
    );
    return { input: child.stdout as Readable, child, what: `directory ${source.path}` };
  }
  const what = `layer tar ${source.path}`;
  return { ...(await decompressTar(createReadStream(source.path, { highWaterMark: READ_CHUNK }), what)), what };
}

/**
 * A `dir:` or `tar:` layer source's bytes as this process reads them (a tar, compressed or not).
 * For user imports the caller reads the source with its own permissions and relays the bytes to
 * the store's writer, which never opens the caller's paths.
 */
export async function* layerSourceBytes(source: LayerSource): AsyncGenerator<Uint8Array, void, undefined> {
  if (source.kind === 'tar') {
    await checkSourcePath(source); // the same checks and messages as a direct import
    yield* createReadStream(source.path, { highWaterMark: READ_CHUNK }) as AsyncIterable<Uint8Array>;
    return;
  }
  const opened = await openLayerSource(source);
  yield* drain(opened, opened.what);
}

// Layer tar bytes, compressed or not, as uncompressed tar: the compression is read from the first
// bytes (gzip, zstd, xz or plain; lz4 and bzip2 are refused by name), gzip is undone in-process,
// zstd and xz by their tools. The one decompression of the import pipeline: tar files, registry
// blobs, archive members and relayed bytes all come through here as streams.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { errnoCode, isStrataError, userError } from '../../errors.js';
import { TOOLS } from '../../host/tools.js';
import { killTool, sourceToolFailure, startTool, type ToolProcess } from '../../host/tool-stream.js';

type TarCompression = 'plain' | 'gzip' | 'zstd' | 'xz';

/** Uncompressed tar bytes, the helper producing them (if any), and `feed`: settles with the feeding error, if any. */
export interface TarStream {
  input: AsyncIterable<Uint8Array>;
  child?: ToolProcess;
  feed?: Promise<unknown>;
}

/** The compression of a layer tar from its first bytes (at least 6 unless the data is shorter). */
function compressionOfMagic(head: Buffer, what: string): TarCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  // lz4 frames (and the legacy format): Docker and OCI have no lz4 layers, but files turn up.
  if (head.length >= 4 && (head.readUInt32LE(0) === 0x184d2204 || head.readUInt32LE(0) === 0x184c2102)) {
    throw userError('E_TAR', `${what} is lz4-compressed, which strata does not read (unsupported compression)`, {
      hint: 'decompress it first (lz4 -d) or recompress it with gzip or zstd',
    });
  }
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') {
    throw userError('E_TAR', `${what} is bzip2-compressed, which strata does not read`, {
      hint: 'decompress it first (bunzip2) or recompress it with gzip or zstd',
    });
  }
  return 'plain';
}

/** Reads the first bytes of a stream to see its compression, and gives back the whole stream. */
async function peek(input: AsyncIterable<Uint8Array>, want: number): Promise<{ head: Buffer; stream: AsyncIterable<Uint8Array> }> {
  const iterator = input[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < want) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    held.push(next.value);
    have += next.value.length;
  }
  const stream = (async function* () {
    try {
      yield* held;
      if (done) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  })();
  return { head: Buffer.concat(held.map((chunk) => Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))), stream };
}

/** `input` (a layer tar, compressed or not) as uncompressed tar bytes. */
export async function decompressTar(input: AsyncIterable<Uint8Array>, what: string): Promise<TarStream> {
  const { head, stream } = await peek(input, 6);
  const settle = (promise: Promise<void>) => promise.then(() => undefined, (error: unknown) => error);
  const compression = compressionOfMagic(head, what);
  switch (compression) {
    case 'plain':
      return { input: stream };
    case 'gzip': {
      const gunzip = createGunzip({ chunkSize: 256 * 1024 });
      // Errors of either stream end up on gunzip, whose iterator then throws them.
      return { input: gunzip, feed: settle(pipeline(Readable.from(stream, { objectMode: false }), gunzip)) };
    }
    case 'zstd':
    case 'xz': {
      const child = startTool(TOOLS[compression], ['-dc'], ['pipe', 'pipe', 'pipe']);
      child.process.stdin?.on('error', () => undefined);
      return { input: child.stdout as Readable, child, feed: settle(pipeline(Readable.from(stream, { objectMode: false }), child.process.stdin as NodeJS.WritableStream)) };
    }
  }
}

export const isZlibError = (error: unknown): boolean => {
  const code = errnoCode(error);
  return code !== undefined && code.startsWith('Z_');
};

export const corruptGzip = (what: string, error: unknown, hint = 'the source is damaged; fetch or export it again') =>
  userError('E_TAR', `cannot read ${what}: gzip data is corrupt (${(error as Error).message})`, { hint });

/** The bytes of an opened tar stream; throws the feeding error first, then the helper process's. */
export async function* drain(opened: TarStream, what: string): AsyncGenerator<Uint8Array, void, undefined> {
  let finished = false;
  try {
    try {
      for await (const chunk of opened.input) yield chunk as Uint8Array;
    } catch (error) {
      const feedError = opened.feed ? await opened.feed : undefined;
      if (isStrataError(feedError)) throw feedError;
      if (isZlibError(error)) throw corruptGzip(what, error);
      throw error;
    }
    const feedError = opened.feed ? await opened.feed : undefined;
    if (isStrataError(feedError)) throw feedError;
    if (opened.child) {
      const failure = await sourceToolFailure(opened.child, what);
      if (failure) throw failure;
    }
    finished = true;
  } finally {
    if (!finished && opened.child) {
      killTool(opened.child);
      await opened.child.exit;
    }
  }
}

/**
 * A layer blob (gzip, zstd, xz or plain, by magic bytes) as uncompressed tar bytes, for callers
 * that merge layers themselves (flatten). The iterator throws the blob's own error first (digest
 * mismatch, broken download), then the decompressor's.
 */
export async function* uncompressedLayer(input: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array, void, undefined> {
  yield* drain(await decompressTar(input, what), what);
}

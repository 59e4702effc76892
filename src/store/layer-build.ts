// Builds one squashfs layer file from a layer tar (plain, gzip, zstd or xz) or a directory tree:
//   source → toOverlayTar (whiteouts to overlay form, diff_id on the side) → tar2sqfs stdin.
// Nothing is unpacked to disk and no root is needed. On any failure every child is killed and the
// partial output file is removed, so the caller only ever finds a complete file at outputPath.
// Long (over ~300 lines): the source, the decompressor and tar2sqfs form one supervised pipeline
// whose failure handling must see all three children; splitting it is planned (issue 13 part 2).

import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Compression } from '../config/types.js';
import { StrataError, errnoCode, firstLine, isStrataError, nodeError, userError } from '../errors.js';
import { SAFE_PATH, TOOLS } from '../host/tools.js';
import { NeedsPlan, toOverlayTar, type LayerPlan, type OverlayConvertResult } from '../tar/overlay-convert.js';

/**
 * `tar`: a layer tar file (plain, gzip, zstd or xz, detected by magic bytes); `dir`: a root
 * filesystem tree; `stream`: layer tar bytes from elsewhere (a registry, an archive member), also
 * plain, gzip, zstd or xz by magic bytes. A stream's own errors (digest mismatch, broken download)
 * win over whatever they cause downstream.
 */
export type LayerSource =
  | { kind: 'tar' | 'dir'; path: string }
  | { kind: 'stream'; open: () => Promise<AsyncIterable<Uint8Array>>; what: string };

export interface BuildSquashfsLayerOptions {
  source: LayerSource;
  /** Where tar2sqfs writes the image (the caller passes a `*.partial` path and renames it later). */
  outputPath: string;
  compression: Compression;
  /** tar2sqfs compressor threads (`--num-jobs`); by default tar2sqfs uses one per CPU (measured: as fast as -j 2 on 2 cores, twice -j 1). */
  jobs?: number;
}

export interface BuiltLayer {
  /** sha256 of the uncompressed layer tar, "sha256:<hex>" (the OCI diff_id). */
  diffId: string;
  /** Bytes of uncompressed layer tar read. */
  bytesIn: number;
}

type TarCompression = 'plain' | 'gzip' | 'zstd' | 'xz';

/** tar2sqfs compressor names; squashfs-tools-ng cannot write uncompressed images. */
export const COMPRESSORS: Record<Exclude<Compression, 'none'>, string> = { zstd: 'zstd', lz4: 'lz4', gzip: 'gzip', xz: 'xz' };

const READ_CHUNK = 1024 * 1024;
const STDERR_LIMIT = 64 * 1024;

/** A spawned helper with its stderr collected and its exit awaited. */
interface Child {
  tool: string;
  process: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
  killedByUs: boolean;
}

function startChild(tool: string, args: string[], stdio: ['pipe' | 'ignore', 'pipe' | 'ignore', 'pipe']): Child {
  const process = spawn(tool, args, { stdio, env: { PATH: SAFE_PATH, LC_ALL: 'C' } });
  let stderr = '';
  process.stderr?.setEncoding('utf8');
  process.stderr?.on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    process.once('error', (error) => resolve({ code: null, signal: null, error }));
    process.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { tool, process, stderr: () => stderr, exit, killedByUs: false };
}

const kill = (child: Child) => {
  if (child.process.exitCode === null && child.process.signalCode === null) {
    child.killedByUs = true;
    child.process.kill('SIGKILL');
  }
};

/** Failed on its own: a non-zero exit, a spawn error, or a signal we did not send. */
const exitedBadly = (child: Child, exit: { code: number | null; signal: NodeJS.Signals | null; error?: Error }): boolean =>
  exit.error !== undefined || (exit.code !== null && exit.code !== 0) || (exit.signal !== null && !child.killedByUs);

/** The first stderr line that says something (not progress, not a broken pipe we caused). */
const usefulLine = (stderr: string): string | undefined =>
  stderr
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !/broken pipe/i.test(line));

const toolMissing = (tool: string, pkg: string) =>
  nodeError('E_TOOL_MISSING', `${tool} is not installed`, { hint: `install the ${pkg} package on this host` });

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

async function detectCompression(path: string): Promise<TarCompression> {
  const handle = await open(path, 'r');
  try {
    const magic = Buffer.alloc(6);
    const { bytesRead } = await handle.read(magic, 0, 6, 0);
    return compressionOfMagic(magic.subarray(0, bytesRead), `layer tar ${path}`);
  } finally {
    await handle.close();
  }
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

/** A decompressor (gunzip or a zstd/xz child) fed from `stream`; `feed` settles with the feeding error, if any. */
function decompress(compression: TarCompression, stream: AsyncIterable<Uint8Array>): { input: AsyncIterable<Uint8Array>; child?: Child; feed?: Promise<unknown> } {
  const settle = (promise: Promise<void>) => promise.then(() => undefined, (error: unknown) => error);
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
      const child = startChild(TOOLS[compression], ['-dc'], ['pipe', 'pipe', 'pipe']);
      child.process.stdin?.on('error', () => undefined);
      return { input: child.process.stdout as Readable, child, feed: settle(pipeline(Readable.from(stream, { objectMode: false }), child.process.stdin as NodeJS.WritableStream)) };
    }
  }
}

/**
 * A layer blob (gzip, zstd, xz or plain, by magic bytes) as uncompressed tar bytes, for callers
 * that merge layers themselves (flatten). The iterator throws the blob's own error first (digest
 * mismatch, broken download), then the decompressor's.
 */
export async function* uncompressedLayer(input: AsyncIterable<Uint8Array>, what: string): AsyncGenerator<Uint8Array, void, undefined> {
  const { head, stream } = await peek(input, 6);
  yield* drain(decompress(compressionOfMagic(head, what), stream), what);
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
  const opened = await openSource(source);
  yield* drain(opened, opened.what);
}

/** The bytes of an opened source; throws the feeding error first, then the helper process's. */
async function* drain(opened: { input: AsyncIterable<Uint8Array>; child?: Child; feed?: Promise<unknown> }, what: string): AsyncGenerator<Uint8Array, void, undefined> {
  let finished = false;
  try {
    try {
      for await (const chunk of opened.input) yield chunk as Uint8Array;
    } catch (error) {
      const feedError = opened.feed ? await opened.feed : undefined;
      if (isStrataError(feedError)) throw feedError;
      if (isZlibError(error)) throw userError('E_TAR', `cannot read ${what}: gzip data is corrupt (${(error as Error).message})`, { hint: 'the source is damaged; fetch or export it again' });
      throw error;
    }
    const feedError = opened.feed ? await opened.feed : undefined;
    if (isStrataError(feedError)) throw feedError;
    if (opened.child) {
      const failure = await childFailure(opened.child, what);
      if (failure) throw failure;
    }
    finished = true;
  } finally {
    if (!finished && opened.child) {
      kill(opened.child);
      await opened.child.exit;
    }
  }
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
async function openSource(source: LayerSource): Promise<{ input: AsyncIterable<Uint8Array>; child?: Child; what: string; feed?: Promise<unknown> }> {
  if (source.kind === 'stream') {
    const { head, stream } = await peek(await source.open(), 6);
    return { ...decompress(compressionOfMagic(head, source.what), stream), what: source.what };
  }
  await checkSourcePath(source);
  if (source.kind === 'dir') {
    // POSIX format for the xattrs; no atime/ctime records, so the same tree gives the same diff_id.
    const child = startChild(
      TOOLS.tar,
      ['--format=posix', '--pax-option=delete=atime,delete=ctime', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '-C', source.path, '-cf', '-', '.'],
      ['ignore', 'pipe', 'pipe'],
    );
    return { input: child.process.stdout as Readable, child, what: `directory ${source.path}` };
  }

  const compression = await detectCompression(source.path);
  const what = `layer tar ${source.path}`;
  switch (compression) {
    case 'plain':
      return { input: createReadStream(source.path, { highWaterMark: READ_CHUNK }), what };
    case 'gzip': {
      const gunzip = createGunzip({ chunkSize: 256 * 1024 });
      // Errors of either stream end up on gunzip, whose iterator then throws them.
      pipeline(createReadStream(source.path, { highWaterMark: READ_CHUNK }), gunzip).catch(() => undefined);
      return { input: gunzip, what };
    }
    case 'zstd':
    case 'xz': {
      const child = startChild(TOOLS[compression], ['-dc', '--', source.path], ['ignore', 'pipe', 'pipe']);
      return { input: child.process.stdout as Readable, child, what };
    }
  }
}

/** Turns a finished helper into an error, or undefined when it succeeded (or we stopped it). */
async function childFailure(child: Child, what: string): Promise<StrataError | undefined> {
  const { code, signal, error } = await child.exit;
  if (error) {
    if (errnoCode(error) === 'ENOENT') return toolMissing(child.tool, child.tool.endsWith('tar') ? 'tar' : child.tool.split('/').pop() ?? child.tool);
    return nodeError('E_SPAWN', `cannot run ${child.tool}: ${error.message}`, { hint: 'check the host installation' });
  }
  if (!exitedBadly(child, { code, signal })) return undefined;
  const line = usefulLine(child.stderr());
  if (line === undefined && signal === 'SIGPIPE') return undefined; // we stopped reading first
  if (line === undefined && code !== null && child.stderr().trim() !== '') return undefined; // only a broken pipe
  return userError('E_TAR', `cannot read ${what}: ${line ?? (signal ? `${child.tool} was killed by ${signal}` : `${child.tool} exited with ${code}`)}`, {
    hint: 'the source is damaged or unreadable; check it, or fetch or export it again',
    detail: child.stderr(),
  });
}

/**
 * Builds a squashfs layer file at `outputPath` from a tar file or a directory, converting OCI
 * whiteouts to overlayfs form on the way. Returns the diff_id of the (uncompressed) layer tar.
 * Throws a StrataError; on failure nothing is left at `outputPath`.
 */
export async function buildSquashfsLayer(options: BuildSquashfsLayerOptions): Promise<BuiltLayer> {
  try {
    return await buildOnce(options);
  } catch (error) {
    if (!(error instanceof NeedsPlan)) throw error;
  }
  // The layer gives a name twice (or replaces its own directory by a file): streaming could not
  // take back what it already wrote. Read it once to decide what the last word on each name is,
  // then build again; only such layers are read three times.
  const opened = await openSource(options.source);
  let plan: LayerPlan | undefined;
  for await (const chunk of toOverlayTar(drain(opened, opened.what), { planOnly: true, onComplete: (result) => (plan = result.plan) })) void chunk;
  return buildOnce(options, plan);
}

async function buildOnce(options: BuildSquashfsLayerOptions, plan?: LayerPlan): Promise<BuiltLayer> {
  const { source, outputPath, compression } = options;
  if (compression === 'none') {
    throw userError('E_COMPRESSION', 'uncompressed squashfs layers are not supported (tar2sqfs always compresses)', {
      hint: 'set import.compression to lz4 (fastest to read) or zstd',
    });
  }
  const compressor = COMPRESSORS[compression];
  if (compressor === undefined) {
    throw userError('E_COMPRESSION', `unknown layer compression "${String(compression)}"`, { hint: 'use one of zstd, lz4, gzip, xz' });
  }

  const opened = await openSource(source);
  const children: Child[] = opened.child ? [opened.child] : [];

  const args = ['--quiet', '--no-skip', '--force', '--compressor', compressor, '--defaults', 'uid=0,gid=0,mode=0755,mtime=0'];
  if (options.jobs !== undefined && options.jobs > 0) args.push('--num-jobs', String(options.jobs));
  args.push(outputPath);
  const packer = startChild(TOOLS.tar2sqfs, args, ['pipe', 'ignore', 'pipe']);
  children.push(packer);
  // Writing into a tar2sqfs that died raises EPIPE on its stdin; its exit status tells the story.
  packer.process.stdin?.on('error', () => undefined);

  let converted: OverlayConvertResult | undefined;
  let streamError: unknown;
  try {
    await pipeline(
      Readable.from(toOverlayTar(opened.input, { markRoot: true, plan, onComplete: (result) => (converted = result) }), { objectMode: false, highWaterMark: READ_CHUNK }),
      packer.process.stdin as NodeJS.WritableStream,
    );
  } catch (error) {
    streamError = error;
  }

  if (streamError !== undefined) {
    // Stop tar2sqfs before it finishes an image from a cut-short stream.
    kill(packer);
  }
  const packerExit = await packer.exit;
  const sourceError = opened.child ? await waitOrKill(opened.child).then(() => childFailure(opened.child as Child, opened.what)) : undefined;
  // A stream's own failure (digest mismatch, broken download) is the cause of whatever followed.
  const feedError = opened.feed ? await opened.feed : undefined;

  let failure: StrataError | NeedsPlan | undefined = isStrataError(feedError) ? feedError : sourceError;
  if (!failure && isStrataError(streamError)) failure = streamError;
  if (!failure && streamError instanceof NeedsPlan) failure = streamError;
  if (!failure && isZlibError(streamError)) {
    failure = userError('E_TAR', `cannot read ${opened.what}: gzip data is corrupt (${(streamError as Error).message})`, {
      hint: 'the file is damaged; fetch or export it again',
    });
  }
  if (!failure && exitedBadly(packer, packerExit)) {
    if (packerExit.error && errnoCode(packerExit.error) === 'ENOENT') failure = toolMissing(TOOLS.tar2sqfs, 'squashfs-tools-ng');
    else {
      const line = usefulLine(packer.stderr()) ?? (packerExit.signal ? `killed by ${packerExit.signal}` : `exit status ${packerExit.code}`);
      failure = userError('E_SQUASHFS', `tar2sqfs could not build the layer from ${opened.what}: ${line}`, {
        hint: 'check free space and permissions where the layer is written, and that the source is a valid layer',
        detail: `${TOOLS.tar2sqfs} ${args.join(' ')}\n${packer.stderr()}`,
      });
    }
  }
  if (!failure && streamError !== undefined) {
    failure = new StrataError('internal', 'E_INTERNAL', `internal error while building a layer: ${firstLine(String((streamError as Error)?.message ?? streamError))}`, {
      hint: 'this is a bug in strata; please report it with the log file',
      detail: streamError instanceof Error ? streamError.stack : undefined,
      cause: streamError,
    });
  }
  if (!failure && converted === undefined) {
    failure = new StrataError('internal', 'E_INTERNAL', 'internal error: the layer conversion ended without a result', {
      hint: 'this is a bug in strata; please report it with the log file',
    });
  }

  if (failure) {
    for (const child of children) kill(child);
    await Promise.all(children.map((child) => child.exit));
    await rm(outputPath, { force: true }).catch(() => undefined);
    throw failure;
  }
  const result = converted as OverlayConvertResult;
  return { diffId: result.diffId, bytesIn: result.bytesIn };
}

/** Waits for a source helper that should be finishing; kills it if it lingers. */
async function waitOrKill(child: Child): Promise<void> {
  const timer = setTimeout(() => kill(child), 2000);
  try {
    await child.exit;
  } finally {
    clearTimeout(timer);
  }
}

const isZlibError = (error: unknown): boolean => {
  const code = errnoCode(error);
  return code !== undefined && code.startsWith('Z_');
};

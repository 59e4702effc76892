// Builds one squashfs layer file from a layer source (layer-source.ts):
//   source → decompress → toOverlayTar (whiteouts to overlay form, diff_id on the side) → tar2sqfs stdin.
// Nothing is unpacked to disk and no root is needed. On any failure every child is killed and the
// partial output file is removed, so the caller only ever finds a complete file at outputPath.

import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../../config/types.js';
import { StrataError, errnoCode, firstLine, isStrataError, userError } from '../../errors.js';
import { TOOLS } from '../../host/tools.js';
import { NeedsPlan, toOverlayTar, type LayerPlan, type OverlayConvertResult } from '../../tar/overlay-convert.js';
import { corruptGzip, drain, isZlibError } from './decompress.js';
import { openLayerSource, READ_CHUNK, type LayerSource } from './layer-source.js';
import { exitedBadly, killTool, sourceToolFailure, startTool, toolMissing, usefulLine, waitOrKill, type ToolProcess } from '../../host/tool-stream.js';


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

/** tar2sqfs compressor names; squashfs-tools-ng cannot write uncompressed images. */
export const COMPRESSORS: Record<Exclude<Compression, 'none'>, string> = { zstd: 'zstd', lz4: 'lz4', gzip: 'gzip', xz: 'xz' };

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
  const opened = await openLayerSource(options.source);
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

  const opened = await openLayerSource(source);
  const children: ToolProcess[] = opened.child ? [opened.child] : [];

  const args = ['--quiet', '--no-skip', '--force', '--compressor', compressor, '--defaults', 'uid=0,gid=0,mode=0755,mtime=0'];
  if (options.jobs !== undefined && options.jobs > 0) args.push('--num-jobs', String(options.jobs));
  args.push(outputPath);
  const packer = startTool(TOOLS.tar2sqfs, args, ['pipe', 'ignore', 'pipe']);
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
    killTool(packer);
  }
  const packerExit = await packer.exit;
  const sourceError = opened.child ? await waitOrKill(opened.child).then(() => sourceToolFailure(opened.child as ToolProcess, opened.what)) : undefined;
  // A stream's own failure (digest mismatch, broken download) is the cause of whatever followed.
  const feedError = opened.feed ? await opened.feed : undefined;

  let failure: StrataError | NeedsPlan | undefined = isStrataError(feedError) ? feedError : sourceError;
  if (!failure && isStrataError(streamError)) failure = streamError;
  if (!failure && streamError instanceof NeedsPlan) failure = streamError;
  if (!failure && isZlibError(streamError)) {
    failure = corruptGzip(opened.what, streamError, 'the file is damaged; fetch or export it again');
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
    for (const child of children) killTool(child);
    await Promise.all(children.map((child) => child.exit));
    await rm(outputPath, { force: true }).catch(() => undefined);
    throw failure;
  }
  const result = converted as OverlayConvertResult;
  return { diffId: result.diffId, bytesIn: result.bytesIn };
}

// Builds one layer file from a layer source (layer-source.ts):
//   source → decompress → toOverlayTar (whiteouts to overlay form, diff_id on the side) → a sink:
//   tar2sqfs (squashfs.ts; compressed layers) or strata's erofs writer (uncompressed layers).
// Nothing is unpacked to disk and no root is needed. On any failure every child is killed and the
// partial output file is removed, so the caller only ever finds a complete file at outputPath.

import { rm } from 'node:fs/promises';
import type { Compression } from '../../config/types.js';
import { StrataError, firstLine, isStrataError } from '../../errors.js';
import { writeErofsImage } from '../../erofs/image-writer.js';
import { killTool, sourceToolFailure, waitOrKill, type ToolProcess } from '../../host/tool-stream.js';
import { NeedsPlan, toOverlayTar, type LayerPlan, type OverlayConvertResult } from '../../tar/overlay-convert.js';
import { layerFormatFor, type LayerFormat } from '../layout.js';
import { corruptGzip, drain, isZlibError } from './decompress.js';
import { openLayerSource, type LayerSource } from './layer-source.js';
import { squashfsCompressor, squashfsSink } from './squashfs.js';

export interface BuildLayerOptions {
  source: LayerSource;
  /** Where the layer file is written (the caller passes a `*.partial` path and renames it later). */
  outputPath: string;
  /** `none`: an uncompressed erofs layer; otherwise squashfs with this compression (layerFormatFor). */
  compression: Compression;
  /** tar2sqfs compressor threads (squashfsSink). */
  jobs?: number;
}

export interface BuiltLayer {
  /** sha256 of the uncompressed layer tar, "sha256:<hex>" (the OCI diff_id). */
  diffId: string;
  /** Bytes of uncompressed layer tar read. */
  bytesIn: number;
  format: LayerFormat;
}

/** What writes the layer file from the overlay tar. */
export interface LayerSink {
  /** Consumes the whole overlay tar; rejects when the stream or the sink fails. */
  write(tar: AsyncIterable<Buffer>): Promise<void>;
  /** Once `write` settled (`streamFailed`: it rejected): the sink's own failure, if it had one. */
  close(streamFailed: boolean): Promise<StrataError | undefined>;
  /** Stops the sink for good (after another part failed). */
  kill(): Promise<void>;
}

/**
 * Builds a layer file at `outputPath` from a tar file or a directory, converting OCI whiteouts to
 * overlayfs form on the way. Returns the diff_id of the (uncompressed) layer tar. Throws a
 * StrataError; on failure nothing is left at `outputPath`.
 */
export async function buildLayerFile(options: BuildLayerOptions): Promise<BuiltLayer> {
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

function sinkFor(options: BuildLayerOptions, what: string): LayerSink {
  const { compression, outputPath } = options;
  if (compression === 'none') {
    return { write: (tar) => writeErofsImage(tar, outputPath), close: async () => undefined, kill: async () => undefined };
  }
  return squashfsSink(outputPath, compression, what, options.jobs);
}

async function buildOnce(options: BuildLayerOptions, plan?: LayerPlan): Promise<BuiltLayer> {
  if (options.compression !== 'none') squashfsCompressor(options.compression);
  const opened = await openLayerSource(options.source);
  const children: ToolProcess[] = opened.child ? [opened.child] : [];
  const sink = sinkFor(options, opened.what);

  let converted: OverlayConvertResult | undefined;
  let streamError: unknown;
  try {
    await sink.write(toOverlayTar(opened.input, { markRoot: true, plan, onComplete: (result) => (converted = result) }));
  } catch (error) {
    streamError = error;
  }
  const sinkFailure = await sink.close(streamError !== undefined);
  const sourceError = opened.child ? await waitOrKill(opened.child).then(() => sourceToolFailure(opened.child as ToolProcess, opened.what)) : undefined;
  // A stream's own failure (digest mismatch, broken download) is the cause of whatever followed.
  const feedError = opened.feed ? await opened.feed : undefined;

  let failure: StrataError | NeedsPlan | undefined = isStrataError(feedError) ? feedError : sourceError;
  if (!failure && isStrataError(streamError)) failure = streamError;
  if (!failure && streamError instanceof NeedsPlan) failure = streamError;
  if (!failure && isZlibError(streamError)) {
    failure = corruptGzip(opened.what, streamError, 'the file is damaged; fetch or export it again');
  }
  if (!failure) failure = sinkFailure;
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
    await Promise.all([sink.kill(), ...children.map((child) => child.exit)]);
    await rm(options.outputPath, { force: true }).catch(() => undefined);
    throw failure;
  }
  const result = converted as OverlayConvertResult;
  return { diffId: result.diffId, bytesIn: result.bytesIn, format: layerFormatFor(options.compression) };
}

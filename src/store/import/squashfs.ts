// The squashfs layer format: the overlay tar on the stdin of tar2sqfs (squashfs-tools-ng), which
// writes the layer file. The format of every compression but `none` (erofs, the default); the
// compressions are compared in docs/performance.md.

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../../config/types.js';
import { COMPRESSIONS } from '../../config/schema.js';
import { errnoCode, userError } from '../../errors.js';
import { TOOLS } from '../../host/tools.js';
import { exitedBadly, killTool, startTool, toolMissing, usefulLine } from '../../host/tool-stream.js';
import { READ_CHUNK } from './layer-source.js';

/**
 * tar2sqfs's compressor and its extra options per compression; squashfs-tools-ng cannot write
 * uncompressed images (those are erofs). lz4hc is lz4 compressed harder: the same lz4 blocks for
 * the kernel to decompress (as fast), ~17% smaller.
 */
export const COMPRESSORS: Record<Exclude<Compression, 'none'>, string[]> = { lz4hc: ['lz4', '--comp-extra', 'hc'], zstd: ['zstd'], lz4: ['lz4'], gzip: ['gzip'], xz: ['xz'] };

/**
 * The compression of a squashfs file made for other tools (`--container-save`, which enroot and
 * Pyxis unpack with unsquashfs): the store's, unless that is erofs (`none`) or lz4, whose small
 * tables tar2sqfs 1.2 writes in a form unsquashfs 4.5 refuses (the kernel and sqfs2tar read it).
 */
export function portableCompression(compression: Compression): Exclude<Compression, 'none'> {
  return compression === 'none' || compression === 'lz4' || compression === 'lz4hc' ? 'zstd' : compression;
}

/** tar2sqfs's arguments for a compression; throws for one it does not know (a hand-edited configuration). */
export function squashfsCompressor(compression: Exclude<Compression, 'none'>): string[] {
  const compressor = COMPRESSORS[compression];
  if (compressor === undefined) {
    throw userError('E_COMPRESSION', `unknown layer compression "${String(compression)}"`, { hint: `use one of ${COMPRESSIONS.join(', ')}` });
  }
  return compressor;
}

/** tar2sqfs's arguments: entries as they are (no skipping), the root's defaults as tar2sqfs's own. */
export function tar2sqfsArgs(compression: Exclude<Compression, 'none'>, outputPath: string, jobs?: number): string[] {
  const args = ['--quiet', '--no-skip', '--force', '--compressor', ...squashfsCompressor(compression), '--defaults', 'uid=0,gid=0,mode=0755,mtime=0'];
  if (jobs !== undefined && jobs > 0) args.push('--num-jobs', String(jobs));
  return [...args, outputPath];
}

/**
 * A tar2sqfs writing `outputPath` with `compression`, started at once (layer-file.ts's LayerSink). `jobs`: compressor threads
 * (`--num-jobs`); by default tar2sqfs uses one per CPU (measured: as fast as -j 2 on 2 cores, twice -j 1).
 */
export function squashfsSink(outputPath: string, compression: Exclude<Compression, 'none'>, what: string, jobs?: number) {
  const args = tar2sqfsArgs(compression, outputPath, jobs);
  const packer = startTool(TOOLS.tar2sqfs, args, ['pipe', 'ignore', 'pipe']);
  // Writing into a tar2sqfs that died raises EPIPE on its stdin; its exit status tells the story.
  packer.process.stdin?.on('error', () => undefined);
  return {
    write: (tar: AsyncIterable<Buffer>) => pipeline(Readable.from(tar, { objectMode: false, highWaterMark: READ_CHUNK }), packer.process.stdin as NodeJS.WritableStream),
    async close(streamFailed: boolean) {
      // Stop tar2sqfs before it finishes an image from a cut-short stream.
      if (streamFailed) killTool(packer);
      const exit = await packer.exit;
      if (!exitedBadly(packer, exit)) return undefined;
      if (exit.error && errnoCode(exit.error) === 'ENOENT') return toolMissing(TOOLS.tar2sqfs, 'squashfs-tools-ng');
      const line = usefulLine(packer.stderr()) ?? (exit.signal ? `killed by ${exit.signal}` : `exit status ${exit.code}`);
      return userError('E_SQUASHFS', `tar2sqfs could not build the layer from ${what}: ${line}`, {
        hint: 'check free space and permissions where the layer is written, and that the source is a valid layer',
        detail: `${TOOLS.tar2sqfs} ${args.join(' ')}\n${packer.stderr()}`,
      });
    },
    async kill() {
      killTool(packer);
      await packer.exit;
    },
  };
}

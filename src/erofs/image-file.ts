// The erofs image file as it is written: data appended in runs, holes where a sparse file has
// them, metadata written at its place at the end. Every failure to write is the layer file's.

import type { FileHandle } from 'node:fs/promises';
import { errnoCode, userError } from '../errors.js';
import { BLOCK_SIZE, align } from './format.js';

/** Data is written in runs of about this size. */
const WRITE_RUN = 2 ** 20;

/** Block addresses are 32 bits: an image holds at most 2^32 blocks of 4 KiB (16 TiB). */
export const MAX_IMAGE_BYTES = 2 ** 32 * BLOCK_SIZE;

export const tooLarge = (bytes: number) =>
  userError('E_LAYER_WRITE', `the layer is too large for an erofs layer file (${bytes} bytes, at most 16 TiB)`, {
    hint: 'import it with import.compression: zstd (squashfs)',
  });

/** The layer file itself could not be written (no space, quota, I/O error). */
export const writeFailed = (path: string) => (error: unknown) => {
  if (errnoCode(error) === undefined) throw error;
  throw userError('E_LAYER_WRITE', `cannot write the layer file ${path}: ${errnoCode(error)}`, {
    hint: 'check free space, quota and permissions where the layer is written',
    cause: error,
  });
};
export class ImageFile {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of the image so far (written or pending). */
  end = BLOCK_SIZE;

  private readonly failed: (error: unknown) => never;

  constructor(
    private readonly handle: FileHandle,
    path: string,
  ) {
    this.failed = writeFailed(path);
  }

  async append(data: Buffer): Promise<void> {
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.end += data.length;
    if (this.pendingBytes >= WRITE_RUN) await this.flush();
  }

  /** Move on to `offset` (>= end), leaving a hole. */
  async skipTo(offset: number): Promise<void> {
    await this.flush();
    this.end = offset;
  }

  async padToBlock(): Promise<void> {
    const pad = align(this.end, BLOCK_SIZE) - this.end;
    if (pad > 0) await this.append(Buffer.alloc(pad));
  }

  async writeAt(data: Buffer, offset: number): Promise<void> {
    await this.flush();
    await this.handle.write(data, 0, data.length, offset).catch(this.failed);
  }

  async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const at = this.end - data.length;
    this.pending = [];
    this.pendingBytes = 0;
    await this.handle.write(data, 0, data.length, at).catch(this.failed);
  }

  async finish(totalBytes: number): Promise<void> {
    await this.flush();
    // Synced by whoever publishes the file.
    await this.handle.truncate(totalBytes).catch(this.failed);
  }
}

// A layer tar holding one regular file larger than 8 GiB (beyond the 11 octal digits of a ustar
// size field), made as a stream and written zstd-compressed: 9 GiB of mostly zeros compresses to
// a few hundred KB, so nothing near the file's size ever touches the disk. The headers are written
// by hand here (not by src/tar) so the test does not check strata's reader against its own writer.

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const BLOCK = 512;
const CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(CHUNK);

/** How the size that does not fit in octal is carried: a PAX `size` record, or GNU base-256. */
export type HugeSizeForm = 'pax' | 'gnu-base256';

export interface HugeTarSpec {
  /** Name of the big file in the layer. */
  name: string;
  /** Its size in bytes (> 8 GiB to matter). */
  size: number;
  /** Non-zero bytes written at these offsets; everything else is zeros. */
  markers: Record<number, string>;
  /** A small file written after the big one: it only comes out right if the big entry's length was. */
  after: { name: string; content: string };
  form: HugeSizeForm;
}

const octal = (block: Buffer, offset: number, length: number, value: number) => {
  block.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
  block[offset + length - 1] = 0;
};

/** A ustar (or GNU, for base-256) header; `size` is written in octal unless `base256` is set. */
function header(name: string, size: number, typeflag: string, options: { gnu?: boolean; base256?: boolean } = {}): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'latin1');
  octal(block, 100, 8, 0o644);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  if (options.base256) {
    // GNU base-256: top bit of the first byte set, the value big-endian in the rest of the field.
    block[124] = 0x80;
    let value = BigInt(size);
    for (let i = 124 + 11; i > 124; i--) {
      block[i] = Number(value & 0xffn);
      value >>= 8n;
    }
  } else {
    octal(block, 124, 12, size);
  }
  octal(block, 136, 12, 1700000000);
  block.fill(0x20, 148, 156);
  block.write(typeflag, 156, 1, 'latin1');
  if (options.gnu) block.write('ustar  \0', 257, 8, 'latin1');
  else block.write('ustar\x0000', 257, 8, 'latin1');
  block.write('root', 265, 32, 'latin1');
  block.write('root', 297, 32, 'latin1');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  octal(block, 148, 7, sum);
  block[155] = 0x20;
  return block;
}

const paxRecord = (key: string, value: string): string => {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return `${length}${body}`;
};

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** The file's bytes: zeros with the markers, in 1 MiB chunks (the zero chunk is shared, never written). */
function* fileData(size: number, markers: Record<number, string>): Generator<Buffer> {
  const placed = Object.entries(markers)
    .map(([offset, text]) => ({ offset: Number(offset), bytes: Buffer.from(text, 'latin1') }))
    .sort((a, b) => a.offset - b.offset);
  for (let start = 0; start < size; start += CHUNK) {
    const length = Math.min(CHUNK, size - start);
    const hits = placed.filter((m) => m.offset < start + length && m.offset + m.bytes.length > start);
    if (hits.length === 0) {
      yield length === CHUNK ? ZEROS : ZEROS.subarray(0, length);
      continue;
    }
    const chunk = Buffer.alloc(length);
    for (const m of hits) {
      for (let i = 0; i < m.bytes.length; i++) {
        const at = m.offset + i - start;
        if (at >= 0 && at < length) chunk[at] = m.bytes[i];
      }
    }
    yield chunk;
  }
}

function* tarStream(spec: HugeTarSpec): Generator<Buffer> {
  if (spec.form === 'pax') {
    const records = Buffer.from(paxRecord('size', String(spec.size)), 'latin1');
    yield header(`PaxHeaders/${spec.name}`.slice(0, 100), records.length, 'x');
    yield records;
    yield pad(records.length);
    // The ustar size field can not hold it; readers take the PAX record (writers put 0 here).
    yield header(spec.name, 0, '0');
  } else {
    yield header(spec.name, spec.size, '0', { gnu: true, base256: true });
  }
  yield* fileData(spec.size, spec.markers);
  yield pad(spec.size);
  const after = Buffer.from(spec.after.content, 'latin1');
  yield header(spec.after.name, after.length, '0', { gnu: spec.form === 'gnu-base256' });
  yield after;
  yield pad(after.length);
  yield Buffer.alloc(2 * BLOCK);
}

/** Writes the layer tar, zstd-compressed, to `path`. */
export async function writeHugeTarZst(path: string, spec: HugeTarSpec): Promise<void> {
  const zstd = spawn('/usr/bin/zstd', ['-q', '-1', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exit = new Promise<number | null>((resolve) => zstd.once('close', resolve));
  await Promise.all([pipeline(Readable.from(tarStream(spec)), zstd.stdin), pipeline(zstd.stdout, createWriteStream(path))]);
  const code = await exit;
  if (code !== 0) throw new Error(`zstd exited with ${code}`);
}

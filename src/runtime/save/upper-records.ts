// The record stream of helper/upper-walk.c (a job's writable layer, read as the job's user), parsed
// as it arrives: one header line per entry, a regular file's bytes right after its line. Paths are
// binary strings (one char per byte, as src/tar/ keeps names), relative to the upper, "." for it.

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

export type UpperRecord =
  | ({ kind: 'dir'; path: string; opaque: boolean } & Meta)
  | ({ kind: 'file'; path: string; size: number } & Meta)
  | { kind: 'hardlink'; path: string; target: string }
  | ({ kind: 'symlink'; path: string; target: string } & Meta)
  | { kind: 'whiteout'; path: string; uid: number; gid: number; mtime: number }
  | ({ kind: 'fifo'; path: string } & Meta)
  | { kind: 'skipped'; path: string; reason: string }
  | { kind: 'failed'; errno: string; path: string; message: string }
  | { kind: 'end' };

/** A piece of the regular file announced by the last `file` record. */
export interface FileData {
  kind: 'data';
  chunk: Buffer;
}

const MAX_LINE = 300_000;

const hex = (text: string) => {
  if (!/^(?:[0-9a-f]{2})+$/.test(text)) throw new Error(`bad hex field "${text.slice(0, 40)}"`);
  return Buffer.from(text, 'hex').toString('latin1');
};
const number = (text: string) => {
  if (!/^\d+$/.test(text)) throw new Error(`bad number "${text.slice(0, 40)}"`);
  return Number(text);
};

/** One header line (without its newline) as a record. Throws on anything malformed. */
export function parseRecordLine(line: string): UpperRecord {
  const [kind, ...f] = line.split(' ');
  const meta = (at: number): Meta => ({ mode: number(f[at]), uid: number(f[at + 1]), gid: number(f[at + 2]), mtime: number(f[at + 3]) });
  const want = (count: number) => {
    if (f.length !== count) throw new Error(`record "${kind}" with ${f.length} fields`);
  };
  switch (kind) {
    case 'D':
      want(6);
      return { kind: 'dir', ...meta(0), opaque: f[4] === '1', path: hex(f[5]) };
    case 'F':
      want(6);
      return { kind: 'file', ...meta(0), size: number(f[4]), path: hex(f[5]) };
    case 'H':
      want(2);
      return { kind: 'hardlink', path: hex(f[0]), target: hex(f[1]) };
    case 'S':
      want(6);
      return { kind: 'symlink', ...meta(0), path: hex(f[4]), target: hex(f[5]) };
    case 'W':
      want(4);
      return { kind: 'whiteout', uid: number(f[0]), gid: number(f[1]), mtime: number(f[2]), path: hex(f[3]) };
    case 'P':
      want(5);
      return { kind: 'fifo', ...meta(0), path: hex(f[4]) };
    case 'X':
      want(2);
      return { kind: 'skipped', path: hex(f[0]), reason: f[1] };
    case 'E':
      if (f.length < 3) throw new Error('short error record');
      return { kind: 'failed', errno: f[0], path: hex(f[1]), message: f.slice(2).join(' ') };
    case 'Z':
      want(0);
      return { kind: 'end' };
    default:
      throw new Error(`unknown record "${String(kind).slice(0, 10)}"`);
  }
}

/** Records and file data from the walker's stdout, in order. Throws on a malformed stream. */
export async function* readUpperRecords(input: AsyncIterable<Buffer>): AsyncGenerator<UpperRecord | FileData> {
  let pending: Buffer = Buffer.alloc(0);
  let dataLeft = 0;
  for await (const piece of input) {
    pending = pending.length ? Buffer.concat([pending, piece]) : piece;
    for (;;) {
      if (dataLeft > 0) {
        if (!pending.length) break;
        const take = Math.min(dataLeft, pending.length);
        yield { kind: 'data', chunk: pending.subarray(0, take) };
        pending = pending.subarray(take);
        dataLeft -= take;
        continue;
      }
      const newline = pending.indexOf(0x0a);
      if (newline < 0) {
        if (pending.length > MAX_LINE) throw new Error('record line too long');
        break;
      }
      const record = parseRecordLine(pending.subarray(0, newline).toString('latin1'));
      pending = pending.subarray(newline + 1);
      if (record.kind === 'file') dataLeft = record.size;
      yield record;
    }
  }
  if (dataLeft > 0 || pending.length) throw new Error('the record stream ended in the middle of an entry');
}

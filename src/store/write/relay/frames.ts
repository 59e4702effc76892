// The byte protocol between a store write's two halves (see relay/writer.ts): the caller sends
// frames on the writer's stdin, the writer answers with JSON lines on its stdout. Pure.
//
//   frame = type (1 byte) | stream (u32 BE) | length (u32 BE) | payload
//   R  stream 0: the request (JSON), always first
//   D  data of a stream       E  end of a stream       X  the stream failed (JSON: an error)
//
// The caller is whoever ran `strata`: the writer treats every frame as untrusted input.

export type FrameType = 'R' | 'D' | 'E' | 'X';
export interface Frame {
  type: FrameType;
  stream: number;
  payload: Buffer;
}

const HEADER = 9;
/** Larger than any chunk a source yields and any request (configs are at most 16 MiB). */
export const MAX_PAYLOAD = 20 * 1024 * 1024;
const TYPES = new Set<string>(['R', 'D', 'E', 'X']);

export function encodeFrame(type: FrameType, stream: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(HEADER);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(stream, 1);
  header.writeUInt32BE(payload.length, 5);
  return Buffer.concat([header, payload]);
}

/** Splits a byte stream into frames; throws on anything that is not one. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** Feed bytes; returns the frames completed by them. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    while (this.pendingBytes >= HEADER) {
      const head = this.peek(HEADER);
      const type = head.toString('latin1', 0, 1);
      const length = head.readUInt32BE(5);
      if (!TYPES.has(type)) throw new Error(`unknown frame type 0x${head[0].toString(16)}`);
      if (length > MAX_PAYLOAD) throw new Error(`frame of ${length} bytes is larger than ${MAX_PAYLOAD}`);
      if (this.pendingBytes < HEADER + length) break;
      const whole = this.take(HEADER + length);
      frames.push({ type: type as FrameType, stream: whole.readUInt32BE(1), payload: whole.subarray(HEADER) });
    }
    return frames;
  }

  /** Bytes of an unfinished frame at the end of the input (a cut-off caller). */
  get leftover(): number {
    return this.pendingBytes;
  }

  private peek(n: number): Buffer {
    if (this.pending[0].length < n) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const taken = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    return taken;
  }
}

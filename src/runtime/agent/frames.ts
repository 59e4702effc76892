// The node agent's wire formats. Pure: bytes in, values out.
//
// Front-end ↔ agent, over the agent's socket (front/strata-front.c is the other implementation):
//   request   "strata-agent/1 <prolog|epilog>\n" then the job's environment as KEY=VALUE\0 entries;
//             the client then shuts its writing side down, so the end of the request is EOF.
//   reply     any number of "\n" (heartbeats, one a second while the job runs), then either
//             "status <exit> <stdout bytes> <stderr bytes>\n<stdout><stderr>"   (the job was run)
//             or "refused <reason>\n"     (not run: the front-end runs the Node entry point itself).
// Agent ↔ gate (front/strata-agent-gate.c), over the gate's stdin/stdout: frames
//   "<connection> <length>\n<bytes>": gate → agent, one per connection, the whole request;
//   agent → gate, bytes to send to that connection, and length 0 to close it. Connection 0 is
//   the gate itself: an empty frame to it means "stop accepting connections".

export const PROTOCOL = 'strata-agent/1';
export const HEARTBEAT = Buffer.from('\n');
/** Largest request the gate forwards (an environment is at most a few hundred KiB). */
export const MAX_REQUEST = 1 << 20;

export type Phase = 'prolog' | 'epilog';

export interface AgentRequest {
  phase: Phase;
  env: Record<string, string>;
}

export interface AgentReply {
  status: number;
  stdout: string;
  stderr: string;
}

/** A request as the front-end sends it. */
export function encodeRequest(request: AgentRequest): Buffer {
  const entries = Object.entries(request.env).map(([key, value]) => `${key}=${value}\0`);
  return Buffer.from(`${PROTOCOL} ${request.phase}\n${entries.join('')}`);
}

/** A request, or why it is not one (answered with a refusal). */
export function decodeRequest(bytes: Buffer): AgentRequest | { refused: string } {
  const newline = bytes.indexOf(10);
  if (newline < 0) return { refused: 'no request line' };
  const [protocol, phase, ...rest] = bytes.subarray(0, newline).toString('latin1').split(' ');
  if (protocol !== PROTOCOL) return { refused: `protocol ${JSON.stringify(protocol)} is not ${PROTOCOL}` };
  if ((phase !== 'prolog' && phase !== 'epilog') || rest.length) return { refused: 'unknown phase' };
  const env: Record<string, string> = {};
  const body = bytes.subarray(newline + 1);
  if (body.length && body[body.length - 1] !== 0) return { refused: 'environment not NUL-terminated' };
  for (const entry of body.toString('utf8').split('\0').slice(0, -1)) {
    const equals = entry.indexOf('=');
    // execve keeps such entries, and getenv never finds them: neither does Node's process.env.
    if (equals <= 0) continue;
    const key = entry.slice(0, equals);
    // getenv() returns the first of duplicated names; so does process.env.
    if (!(key in env)) env[key] = entry.slice(equals + 1);
  }
  return { phase, env };
}

export function encodeReply(reply: AgentReply): Buffer {
  const stdout = Buffer.from(reply.stdout);
  const stderr = Buffer.from(reply.stderr);
  return Buffer.concat([Buffer.from(`status ${reply.status} ${stdout.length} ${stderr.length}\n`), stdout, stderr]);
}

export function encodeRefusal(reason: string): Buffer {
  return Buffer.from(`refused ${reason.replace(/\n/g, ' ')}\n`);
}

/** A complete reply as the front-end reads it; undefined if incomplete or malformed (= fall back). */
export function decodeReply(bytes: Buffer): AgentReply | { refused: string } | undefined {
  let start = 0;
  while (start < bytes.length && bytes[start] === 10) start++;
  const newline = bytes.indexOf(10, start);
  if (newline < 0) return undefined;
  const header = bytes.subarray(start, newline).toString('latin1');
  if (header.startsWith('refused ')) return { refused: header.slice(8) };
  const match = /^status (\d{1,3}) (\d{1,9}) (\d{1,9})$/.exec(header);
  if (!match) return undefined;
  const [status, outLength, errLength] = match.slice(1).map(Number);
  const body = bytes.subarray(newline + 1);
  if (status > 255 || body.length !== outLength + errLength) return undefined;
  return { status, stdout: body.subarray(0, outLength).toString(), stderr: body.subarray(outLength).toString() };
}

export function encodeFrame(connection: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${connection} ${bytes.length}\n`), bytes]);
}

export interface Frame {
  connection: number;
  bytes: Buffer;
}

/** Splits the gate's stdout into frames, whatever the chunking. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  /** The frames completed by `chunk`; throws on a malformed header (the gate is ours: a bug). */
  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Frame[] = [];
    for (;;) {
      const newline = this.pending.indexOf(10);
      if (newline < 0) {
        if (this.pending.length > 32) throw new Error('agent gate: frame header too long');
        return frames;
      }
      const match = /^(\d{1,9}) (\d{1,9})$/.exec(this.pending.subarray(0, newline).toString('latin1'));
      if (!match) throw new Error(`agent gate: bad frame header ${JSON.stringify(this.pending.subarray(0, newline).toString('latin1'))}`);
      const length = Number(match[2]);
      if (length > MAX_REQUEST) throw new Error('agent gate: frame too long');
      if (this.pending.length < newline + 1 + length) return frames;
      frames.push({ connection: Number(match[1]), bytes: this.pending.subarray(newline + 1, newline + 1 + length) });
      this.pending = this.pending.subarray(newline + 1 + length);
    }
  }
}

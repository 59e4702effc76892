// The writing half of a store write done for someone else: a user's import into their own
// namespace (run by sudo as the store's owner), or root's into a store a service account owns
// (run by setpriv). The other half, run as the caller, reads the source with the caller's own
// permissions and credentials and relays the bytes here; this half never opens a path or a
// credential the caller names. It verifies what it gets exactly as a direct import does (digests,
// diff_ids, tar entries), so the relayed bytes are no more trusted than a registry's.

import type { Compression } from '../../../config/types.js';
import { isErrorCode } from '../../../error-codes.js';
import type { Readable, Writable } from 'node:stream';
import { StrataError, userError } from '../../../errors.js';
import type { LayerSource } from '../../import/layer-source.js';
import { DIGEST_RE } from '../../sources/manifest.js';
import type { ImageSource, SourceImage } from '../../sources/types.js';
import { FrameDecoder, MAX_PAYLOAD, type Frame } from './frames.js';

/** What the caller asks for (the first frame). Every field comes from the caller: check it. */
export type WriteRequest =
  | { op: 'import'; sourceText: string; description: string; tag?: string; flatten?: boolean; compression?: Compression; image: RelayedImage }
  | { op: 'import-layer'; sourceText: string; what: string; tag: string; base?: string; compression?: Compression }
  | { op: 'tag'; source: string; target: string }
  | { op: 'rm'; refs: string[] };

/** A resolved image as the caller's half saw it; the layers' bytes come as streams on request. */
export interface RelayedImage {
  manifestDigest?: string;
  /** base64 */
  config: string;
  configDigest: string;
  layers: { digest?: string; mediaType: string; size?: number }[];
  suggestedTag?: string;
}

/** Answers on the writer's stdout, one JSON object per line. */
export type WriterMessage = { ready: true } | { open: number; stream: number } | { result: { digest?: string } };

const broken = (why: string) =>
  userError('E_RELAY', `the store write was cut off: ${why}`, { hint: 'run the command again; if it keeps failing, ask your admin (docs/troubleshooting.md)' });

/** Buffered relayed bytes above which the writer stops reading its input until consumers catch up. */
const HIGH_WATER = 16 * 1024 * 1024;

class StreamQueue {
  chunks: Buffer[] = [];
  ended = false;
  error?: Error;
  wake?: () => void;
}

/** The writer's end of the relay: the request, and the streams it asks for. */
export class WriterChannel {
  private decoder = new FrameDecoder();
  private streams = new Map<number, StreamQueue>();
  private nextStream = 1;
  private buffered = 0;
  private request?: Promise<WriteRequest>;
  private gotRequest?: (request: WriteRequest) => void;
  private failRequest?: (error: Error) => void;
  private failed?: Error;

  constructor(private input: Readable, private output: Writable) {
    this.request = new Promise<WriteRequest>((resolve, reject) => {
      this.gotRequest = resolve;
      this.failRequest = reject;
    });
    this.request.catch(() => undefined);
    input.on('data', (chunk: Buffer) => this.onData(chunk));
    input.on('end', () => this.fail(broken(this.decoder.leftover ? 'the caller stopped in the middle of a frame' : 'the caller went away')));
    input.on('error', (error) => this.fail(broken(error.message)));
  }

  readRequest(): Promise<WriteRequest> {
    return this.request!;
  }

  /** Stop reading: the write is over (else the open stdin keeps the writer alive). */
  close(): void {
    this.input.removeAllListeners('data');
    this.input.destroy();
  }

  send(message: WriterMessage): void {
    this.output.write(`${JSON.stringify(message)}\n`);
  }

  /** Ask the caller for layer `index`'s bytes. */
  async *openLayer(index: number): AsyncGenerator<Uint8Array, void, undefined> {
    const id = this.nextStream++;
    const queue = new StreamQueue();
    this.streams.set(id, queue);
    this.send({ open: index, stream: id });
    try {
      for (;;) {
        const chunk = queue.chunks.shift();
        if (chunk) {
          this.buffered -= chunk.length;
          if (this.buffered < HIGH_WATER / 2) this.input.resume();
          yield chunk;
          continue;
        }
        if (queue.error) throw queue.error;
        if (queue.ended) return;
        if (this.failed) throw this.failed;
        await new Promise<void>((resolve) => (queue.wake = resolve));
        queue.wake = undefined;
      }
    } finally {
      // A stream given up on must not hold back the others: its unread bytes stop counting.
      this.streams.delete(id);
      this.buffered -= queue.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
      if (this.buffered < HIGH_WATER / 2) this.input.resume();
    }
  }

  private onData(chunk: Buffer) {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      return this.fail(broken((error as Error).message));
    }
    for (const frame of frames) this.onFrame(frame);
    if (this.buffered > HIGH_WATER) this.input.pause();
  }

  private onFrame(frame: Frame) {
    if (frame.type === 'R') {
      try {
        this.gotRequest?.(JSON.parse(frame.payload.toString('utf8')) as WriteRequest);
      } catch {
        this.fail(broken('the request is not JSON'));
      }
      this.gotRequest = undefined;
      return;
    }
    const queue = this.streams.get(frame.stream);
    if (!queue) return; // a stream we gave up on: its remaining bytes are dropped
    if (frame.type === 'D') {
      // Copy: the frame is a view into a buffer the decoder reuses.
      queue.chunks.push(Buffer.from(frame.payload));
      this.buffered += frame.payload.length;
    } else if (frame.type === 'E') queue.ended = true;
    else queue.error = relayedError(frame.payload);
    queue.wake?.();
  }

  private fail(error: Error) {
    if (this.failed) return;
    this.failed = error;
    this.failRequest?.(error);
    for (const queue of this.streams.values()) queue.wake?.();
  }
}

/** An error the caller's half met reading the source (a registry 404, an unreadable file). */
function relayedError(payload: Buffer): StrataError {
  try {
    const { kind, code, message, hint } = JSON.parse(payload.toString('utf8')) as { kind?: string; code?: string; message?: string; hint?: string };
    // Whatever the caller says, it is the user's problem, never this host's.
    // The code is only believed if it is one of ours.
    return userError(isErrorCode(code) ? code : 'E_SOURCE', String(message ?? 'reading the source failed').slice(0, 2000), {
      hint: typeof hint === 'string' ? hint.slice(0, 500) : undefined,
      detail: kind === 'node' ? 'reported by the reading half as a host problem on the caller\'s side' : undefined,
    });
  } catch {
    return broken('the reading half failed');
  }
}

export const relayRequestError = (why: string) => userError('E_RELAY', `refusing the store write: ${why}`, { hint: 'use the strata command itself (the request came from something else)' });

const isString = (value: unknown, max = 4096): value is string => typeof value === 'string' && value.length > 0 && value.length <= max;

/** A request's image as an import source whose layers stream from the caller. Checks its shape. */
export function relayedImageSource(channel: WriterChannel, request: Extract<WriteRequest, { op: 'import' }>): ImageSource {
  const image = request.image;
  if (!image || typeof image !== 'object') throw relayRequestError('no image');
  if (!isString(image.config, Math.ceil((MAX_PAYLOAD * 4) / 3))) throw relayRequestError('no image config');
  if (!DIGEST_RE.test(String(image.configDigest))) throw relayRequestError('the config digest is not a sha256 digest');
  if (image.manifestDigest !== undefined && !DIGEST_RE.test(String(image.manifestDigest))) throw relayRequestError('the manifest digest is not a sha256 digest');
  if (!Array.isArray(image.layers) || image.layers.length > 10000) throw relayRequestError('no layer list');
  const layers = image.layers.map((layer, index) => {
    if (!layer || typeof layer !== 'object') throw relayRequestError(`layer ${index + 1} is not described`);
    if (layer.digest !== undefined && !DIGEST_RE.test(String(layer.digest))) throw relayRequestError(`layer ${index + 1} has no valid digest`);
    if (layer.size !== undefined && !(Number.isSafeInteger(layer.size) && layer.size >= 0)) throw relayRequestError(`layer ${index + 1} has no valid size`);
    return { digest: layer.digest, mediaType: String(layer.mediaType ?? '').slice(0, 200), size: layer.size, open: async () => channel.openLayer(index) };
  });
  const resolved: SourceImage = {
    manifestDigest: image.manifestDigest,
    configBytes: Buffer.from(image.config, 'base64'),
    configDigest: image.configDigest,
    layers,
    suggestedTag: isString(image.suggestedTag, 300) ? image.suggestedTag : undefined,
  };
  return { description: isString(request.description, 1000) ? request.description : 'the relayed image', resolve: async () => resolved, close: async () => undefined };
}

/** A request's single layer (`dir:`/`tar:` imports) as a stream from the caller. */
export function relayedLayerSource(channel: WriterChannel, request: Extract<WriteRequest, { op: 'import-layer' }>): LayerSource {
  return { kind: 'stream', what: isString(request.what, 1000) ? request.what : 'the relayed layer', open: async () => channel.openLayer(0) };
}


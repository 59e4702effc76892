// The caller's half of a store write done by the store's owner (see relay/writer.ts): send the
// request, then stream each layer the writer asks for, read here with the caller's permissions.
// Returns what the writer answered when it exits (`ready`: it started at all); its stderr is the caller's (messages, progress).

import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { asStrataError } from '../../../errors.js';
import { encodeFrame } from './frames.js';
import type { WriteRequest, WriterMessage } from './writer.js';

export interface WriterProcess {
  stdin: Writable;
  stdout: Readable;
  /** Resolves with the writer's exit status. */
  exit: Promise<number>;
}

/** Layer `index`'s bytes (compressed or not, as the source has them). */
export type LayerBytes = (index: number) => Promise<AsyncIterable<Uint8Array>>;

export async function relayWrite(writer: WriterProcess, request: WriteRequest, layerBytes?: LayerBytes): Promise<{ status: number; ready: boolean; digest?: string }> {
  let gone = false;
  writer.stdin.on('error', () => (gone = true)); // the writer exited (it reports why on stderr)
  const write = async (frame: Buffer) => {
    if (gone) return;
    if (!writer.stdin.write(frame)) await Promise.race([once(writer.stdin, 'drain'), writer.exit]);
  };
  await write(encodeFrame('R', 0, Buffer.from(JSON.stringify(request))));

  let digest: string | undefined;
  let ready = false;
  const pumps: Promise<void>[] = [];
  const pump = async (index: number, stream: number) => {
    try {
      if (!layerBytes) throw new Error('this request has no layers');
      for await (const chunk of await layerBytes(index)) {
        if (gone) return;
        await write(encodeFrame('D', stream, chunk));
      }
      await write(encodeFrame('E', stream));
    } catch (thrown) {
      const error = asStrataError(thrown);
      await write(encodeFrame('X', stream, Buffer.from(JSON.stringify({ kind: error.kind, code: error.code, message: error.message, hint: error.hint }))));
    }
  };
  for await (const line of createInterface({ input: writer.stdout, crlfDelay: Infinity })) {
    let message: WriterMessage;
    try {
      message = JSON.parse(line) as WriterMessage;
    } catch {
      continue; // not ours (nothing else should write there)
    }
    if ('ready' in message) ready = true;
    else if ('open' in message) pumps.push(pump(message.open, message.stream));
    else if ('result' in message) {
      digest = message.result.digest;
      writer.stdin.end();
    }
  }
  const status = await writer.exit;
  gone = true;
  await Promise.allSettled(pumps);
  writer.stdin.end();
  return { status, ready, digest };
}

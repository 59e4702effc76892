// The relay between a store write's two halves (store/write/relay/*), in one process over real pipes of
// streams: the request, several layers streamed at once under backpressure, a source failing
// mid-stream, a caller cut off, and input that is not the protocol.

import { PassThrough } from 'node:stream';
import { createHash } from 'node:crypto';
import { FrameDecoder, encodeFrame } from '../../src/store/write/relay/frames.js';
import { relayWrite } from '../../src/store/write/relay/caller.js';
import { WriterChannel, relayedImageSource, type WriteRequest } from '../../src/store/write/relay/writer.js';
import { userError } from '../../src/errors.js';

function pair() {
  const toWriter = new PassThrough();
  const toCaller = new PassThrough();
  const channel = new WriterChannel(toWriter, toCaller);
  let finish!: (status: number) => void;
  const exit = new Promise<number>((resolve) => (finish = resolve));
  return { channel, writer: { stdin: toWriter, stdout: toCaller, exit }, done: (status: number) => { channel.close(); toCaller.end(); finish(status); } };
}

const hash = (chunks: Uint8Array[]) => createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
async function collect(stream: AsyncIterable<Uint8Array>) {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

const image = (layers: number): WriteRequest => ({
  op: 'import', sourceText: 'oci:/x', description: 'test image',
  image: { config: Buffer.from('{}').toString('base64'), configDigest: `sha256:${'a'.repeat(64)}`, layers: Array.from({ length: layers }, () => ({ mediaType: 'x' })) },
});

test('frames survive being split at every byte', () => {
  const bytes = Buffer.concat([encodeFrame('R', 0, Buffer.from('{"op":"rm"}')), encodeFrame('D', 7, Buffer.from('data')), encodeFrame('E', 7)]);
  const decoder = new FrameDecoder();
  const frames = [...bytes].flatMap((byte) => decoder.push(Buffer.from([byte])));
  expect(frames.map((f) => [f.type, f.stream, f.payload.toString()])).toEqual([['R', 0, '{"op":"rm"}'], ['D', 7, 'data'], ['E', 7, '']]);
  expect(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(/unknown frame type/);
});

test('three layers of 24 MiB each stream at once, under backpressure, byte for byte', async () => {
  const { channel, writer, done } = pair();
  const layer = (index: number) => Array.from({ length: 24 }, (_, i) => Buffer.alloc(1 << 20, index * 31 + i));
  const caller = relayWrite(writer, image(3), async (index) => (async function* () {
    yield* layer(index);
  })());
  const request = await channel.readRequest();
  expect(request.op).toBe('import');
  const source = relayedImageSource(channel, request as Extract<WriteRequest, { op: 'import' }>);
  const resolved = await source.resolve();
  const got = await Promise.all(resolved.layers.map(async (l) => hash(await collect(await l.open()))));
  expect(got).toEqual([0, 1, 2].map((i) => hash(layer(i))));
  channel.send({ result: { digest: 'sha256:done' } });
  done(0);
  expect(await caller).toEqual({ status: 0, ready: false, digest: 'sha256:done' });
});

test("the source's own error reaches the writer as the user's error, message and hint intact", async () => {
  const { channel, writer, done } = pair();
  const caller = relayWrite(writer, image(1), async () => (async function* () {
    yield Buffer.from('some bytes');
    throw userError('E_REGISTRY', 'registry says 404 for layer 1', { hint: 'check the tag' });
  })());
  const source = relayedImageSource(channel, (await channel.readRequest()) as Extract<WriteRequest, { op: 'import' }>);
  const [layer] = (await source.resolve()).layers;
  await expect(collect(await layer.open())).rejects.toMatchObject({ kind: 'user', code: 'E_REGISTRY', message: 'registry says 404 for layer 1', hint: 'check the tag' });
  done(1);
  expect((await caller).status).toBe(1);
});

test('a caller cut off mid-stream fails the layer, it does not end it as if complete', async () => {
  const { channel, writer } = pair();
  writer.stdin.write(encodeFrame('R', 0, Buffer.from(JSON.stringify(image(1)))));
  const source = relayedImageSource(channel, (await channel.readRequest()) as Extract<WriteRequest, { op: 'import' }>);
  const [layer] = (await source.resolve()).layers;
  const reading = collect(await layer.open());
  await new Promise((resolve) => setImmediate(resolve));
  writer.stdin.write(encodeFrame('D', 1, Buffer.from('half')));
  writer.stdin.end(encodeFrame('D', 1, Buffer.from('cut')).subarray(0, 5));
  await expect(reading).rejects.toMatchObject({ code: 'E_RELAY', message: 'the store write was cut off: the caller stopped in the middle of a frame' });
  channel.close();
});

test('a request with a malformed image is refused before anything is read', async () => {
  const { channel } = pair();
  const bad = { ...image(1), image: { ...(image(1) as Extract<WriteRequest, { op: 'import' }>).image, layers: [{ mediaType: 'x', digest: '../../etc/passwd' }] } } as Extract<WriteRequest, { op: 'import' }>;
  expect(() => relayedImageSource(channel, bad)).toThrow(/refusing the store write: layer 1 has no valid digest/);
  channel.close();
});

test('a layer the writer gives up on does not stall the others behind its unread bytes', async () => {
  const { channel, writer, done } = pair();
  const big = (index: number) => Array.from({ length: 40 }, (_, i) => Buffer.alloc(1 << 20, index + i));
  const caller = relayWrite(writer, image(2), async (index) => (async function* () {
    yield* big(index);
  })());
  const source = relayedImageSource(channel, (await channel.readRequest()) as Extract<WriteRequest, { op: 'import' }>);
  const [first, second] = (await source.resolve()).layers;
  // Open the first, read one chunk and stop: its other 39 MiB may already be queued.
  const abandoned = (await first.open())[Symbol.asyncIterator]();
  await abandoned.next();
  const reading = collect(await second.open());
  await new Promise((resolve) => setTimeout(resolve, 200));
  await abandoned.return?.(undefined);
  expect(hash(await reading)).toBe(hash(big(1)));
  channel.send({ result: {} });
  done(0);
  expect((await caller).status).toBe(0);
});

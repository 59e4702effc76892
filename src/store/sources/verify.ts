// Digest checks for everything a source hands over: whole documents, and blob streams checked as
// they pass (the error comes at the end of the stream, before the caller publishes anything).

import { createHash } from 'node:crypto';
import { userError } from '../../errors.js';

export const digestOf = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export const digestMismatch = (what: string, expected: string, actual: string) =>
  userError('E_DIGEST', `${what} does not match its digest: expected ${expected}, got ${actual}; nothing was published`, {
    hint: 'the source is corrupt or was changed during the import; fetch or export it again',
  });

export function verifyBytes(bytes: Buffer, expected: string, what: string): Buffer {
  const actual = digestOf(bytes);
  if (actual !== expected) throw digestMismatch(what, expected, actual);
  return bytes;
}

export interface StreamTally {
  bytes: number;
}

/**
 * Passes `input` through, hashing it; at its end throws E_DIGEST when the bytes do not hash to
 * `expected` (or when `size` is given and differs). `onBytes` sees each chunk's length (progress).
 */
export async function* verifyStream(
  input: AsyncIterable<Uint8Array>,
  expected: string | undefined,
  what: string,
  options: { size?: number; onBytes?: (n: number) => void } = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of input) {
    hash.update(chunk);
    bytes += chunk.length;
    options.onBytes?.(chunk.length);
    yield chunk;
  }
  if (expected === undefined) return;
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== expected) throw digestMismatch(what, expected, actual);
  if (options.size !== undefined && options.size !== bytes) {
    throw userError('E_DIGEST', `${what} is ${bytes} bytes, the manifest says ${options.size}; nothing was published`, {
      hint: 'the source is damaged; fetch or export it again',
    });
  }
}

// Runs the OCI → overlay tar converter over a whole archive held in memory, the way the tests of it
// (test/unit/tar-overlay-convert, test/integration/tar-overlay-convert-sparse) drive it.

import { isStrataError } from '../../src/errors.js';
import { toOverlayTar, type OverlayConvertResult } from '../../src/tar/overlay-convert.js';
import { chunked } from './tar-build.js';

/** Converts `bytes` fed in `chunkSize` chunks; checks the generator returns what onComplete reported. */
export async function convert(bytes: Buffer, chunkSize = 64 * 1024, markRoot = false): Promise<{ out: Buffer; result: OverlayConvertResult }> {
  const parts: Buffer[] = [];
  let result: OverlayConvertResult | undefined;
  const iterator = toOverlayTar(chunked(bytes, chunkSize), { markRoot, onComplete: (r) => (result = r) });
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      expect(next.value).toEqual(result);
      break;
    }
    parts.push(next.value);
  }
  return { out: Buffer.concat(parts), result: result as OverlayConvertResult };
}

/** The user error a conversion fails with (one line, kind 'user'); fails the test if it succeeds. */
export async function convertError(bytes: Buffer): Promise<{ code: string; message: string; hint?: string }> {
  try {
    await convert(bytes);
  } catch (error) {
    if (!isStrataError(error)) throw error;
    expect(error.message).not.toContain('\n');
    expect(error.kind).toBe('user');
    return { code: error.code, message: error.message, hint: error.hint };
  }
  throw new Error('conversion succeeded, expected an error');
}

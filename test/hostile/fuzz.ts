// A small deterministic fuzzer (no dependencies): a seeded PRNG, mutators over strings and bytes,
// and a check that every input either gives a result or a one-line StrataError of the expected
// kind — never another exception, never a hang. Seeds are printed on failure so a run can be
// repeated exactly: STRATA_FUZZ_SEED=<n> STRATA_FUZZ_RUNS=<n> (default 1 seed, a bounded count).

import { isStrataError, type ErrorKind } from '../../src/errors.js';

export const SEED = Number(process.env.STRATA_FUZZ_SEED ?? 20261201);
export const RUNS = Number(process.env.STRATA_FUZZ_RUNS ?? 2000);

/** mulberry32: tiny, fast, good enough to explore inputs. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)];

const NASTY = ['', '/', '..', '.', ':', ',', '@', '\0', '\n', ' ', '\\', '%', '$(id)', '`id`', '*', '~', '\u202e', 'é', '\uffff', 'sha256:', '/../', '//', ':ro', ':rw', ':x'];

/** A mutated version of `seed`: insert, delete, repeat or replace pieces with nasty fragments. */
export function mutateString(random: () => number, seed: string): string {
  let text = seed;
  const edits = 1 + Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (text.length + 1));
    switch (Math.floor(random() * 5)) {
      case 0:
        text = text.slice(0, at) + pick(random, NASTY) + text.slice(at);
        break;
      case 1:
        text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 4));
        break;
      case 2:
        text = text.slice(0, at) + text.slice(at, at + 8).repeat(1 + Math.floor(random() * 50)) + text.slice(at + 8);
        break;
      case 3:
        text = text.slice(0, at) + String.fromCharCode(Math.floor(random() * 0x250)) + text.slice(at + 1);
        break;
      default:
        text = text.slice(0, at) + 'x'.repeat(Math.floor(random() * 300)) + text.slice(at);
    }
  }
  return text;
}

/** A copy of `bytes` with a few bytes flipped, zeroed or set to tar-significant characters. */
export function mutateBytes(random: () => number, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const edits = 1 + Math.floor(random() * 6);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * out.length);
    out[at] = pick(random, [0, 0x20, 0x30, 0x37, 0x39, 0x2f, 0x2e, 0x78, 0xff, 0x80, Math.floor(random() * 256)]);
  }
  return out;
}

/** The input was either accepted or refused with a StrataError of `kind` whose summary is one line. */
export function expectCleanOutcome(kind: ErrorKind, input: unknown, error: unknown): void {
  if (error === undefined) return;
  const described = JSON.stringify(input)?.slice(0, 300);
  if (!isStrataError(error)) throw new Error(`input ${described} raised a non-strata error: ${(error as Error)?.stack ?? String(error)}`);
  if (error.kind !== kind) throw new Error(`input ${described} raised a ${error.kind} error (${error.code}: ${error.summary}), expected ${kind}`);
  if (error.summary.includes('\n')) throw new Error(`input ${described}: error is not one line: ${error.summary}`);
}

/** Run `fn`; return the thrown value (or undefined). */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error;
  }
}

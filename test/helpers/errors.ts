// Asserting the errors users and admins see: a StrataError of kind `user` (or `node`), with a
// given code, on one line.

import { StrataError } from '../../src/errors.js';

export function expectUserError(fn: () => unknown, code: string, kind: 'user' | 'node' = 'user'): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    const strata = error as StrataError;
    expect(strata.kind).toBe(kind);
    expect(strata.code).toBe(code);
    expect(strata.summary).not.toContain('\n');
    return strata;
  }
  throw new Error(`expected a ${code} error`);
}

export const expectNodeError = (fn: () => unknown, code: string): StrataError => expectUserError(fn, code, 'node');

// Asserting the errors users see: a StrataError of kind `user`, with a given code, on one line.

import { StrataError } from '../../src/errors.js';

export function expectUserError(fn: () => unknown, code: string): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    const strata = error as StrataError;
    expect(strata.kind).toBe('user');
    expect(strata.code).toBe(code);
    expect(strata.summary).not.toContain('\n');
    return strata;
  }
  throw new Error(`expected a ${code} error`);
}

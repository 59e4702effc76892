// The one place an error becomes output: one line on stderr (`strata: <what>; <what to do>`),
// the details only with STRATA_DEBUG=1, and an exit status by kind (2 = your input, 1 = the system).

import { asStrataError } from '../errors.js';

export function renderError(thrown: unknown): number {
  const error = asStrataError(thrown);
  process.stderr.write(`strata: ${error.summary}\n`);
  if (process.env.STRATA_DEBUG && (error.detail || error.stack)) process.stderr.write(`${error.detail ?? error.stack}\n`);
  return error.kind === 'user' ? 2 : 1;
}

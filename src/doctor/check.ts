// One finding of `strata doctor`, and its three constructors.

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  /** What to do about a warn or fail, one sentence. */
  fix?: string;
}

export const ok = (name: string, message: string): Check => ({ name, status: 'ok', message });
export const warn = (name: string, message: string, fix: string): Check => ({ name, status: 'warn', message, fix });
export const fail = (name: string, message: string, fix: string): Check => ({ name, status: 'fail', message, fix });

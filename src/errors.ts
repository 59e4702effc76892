// The few error kinds strata raises, and the one rule that maps them to consequences:
// a `user` error fails the job (never the node), a `node` error takes the node out, `internal` is a bug.

import type { ErrnoFaultCode, ErrorCode } from './error-codes.js';

export type ErrorKind = 'user' | 'node' | 'internal';

export interface StrataErrorOptions {
  /** What the reader should do about it, in one sentence. */
  hint?: string;
  /** Admin-only detail (command line, stderr, paths); never shown to job users. */
  detail?: string;
  cause?: unknown;
}

export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly hint?: string;
  readonly detail?: string;

  constructor(kind: ErrorKind, code: ErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, 'name', { value: 'StrataError', enumerable: false });
    this.kind = kind;
    this.code = code;
    this.hint = options.hint;
    this.detail = options.detail;
  }

  /** One line for a terminal or a job's output: what failed, then what to do. */
  get summary(): string {
    return this.hint ? `${this.message}; ${this.hint}` : this.message;
  }
}

export const userError = (code: ErrorCode, message: string, options?: StrataErrorOptions) =>
  new StrataError('user', code, message, options);
export const nodeError = (code: ErrorCode, message: string, options?: StrataErrorOptions) =>
  new StrataError('node', code, message, options);

export const isStrataError = (error: unknown): error is StrataError => error instanceof StrataError;

/** Any thrown value as a StrataError: unknown errors are internal (a bug), keeping the cause. */
export function asStrataError(error: unknown): StrataError {
  if (isStrataError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StrataError('internal', 'E_INTERNAL', `internal error: ${firstLine(message)}`, {
    hint: 'this is a bug in strata; please report it with the log file',
    detail: error instanceof Error ? error.stack : undefined,
    cause: error,
  });
}

export const firstLine = (text: string) => text.split('\n', 1)[0].trim();

/** Node's errno code of a failed fs call, if any. */
export const errnoCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;

const NODE_ERRNOS: Record<string, string> = {
  ENOSPC: 'no space left on a node-local filesystem',
  EDQUOT: 'disk quota exceeded on a node-local filesystem',
  EIO: 'I/O error',
  EROFS: 'a node-local filesystem is read-only',
  ENOMEM: 'out of memory',
};

/** A raw fs failure that is the node's condition, not the job's (disk full, I/O error) as a node fault. */
export function nodeFaultOf(error: unknown): StrataError | undefined {
  const code = errnoCode(error);
  if (isStrataError(error) || !code || !(code in NODE_ERRNOS)) return undefined;
  const { path, syscall } = error as { path?: string; syscall?: string };
  const where = path ? ` (${path})` : syscall ? ` (${syscall})` : '';
  return nodeError(`E_${code}` as ErrnoFaultCode, `${NODE_ERRNOS[code]}${where}`, { hint: 'free space or fix the filesystem on this node; `strata node status` shows what strata holds', cause: error });
}

/** User-supplied text for a one-line message: control characters (newlines, NUL, ESC) escaped. */
export const printable = (text: string) => text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/**
 * The closed set of error codes the core uses. Every failure a caller of the core can observe
 * carries one of them; the README has a table of what causes each and what to do about it.
 * Layers above the core add their own codes (see {@link ErrorCodeExtensions}).
 */
export const ERROR_CODES = [
  'TIMEOUT',
  'NO_ACTOR',
  'ACTOR_EXITED',
  'NODE_DOWN',
  'CALLING_SELF',
  'INVALID_MESSAGE',
  'UNAUTHORIZED',
  'VERSION_MISMATCH',
  'FRAME_TOO_LARGE',
  'PROTOCOL_ERROR',
  'UNKNOWN_BEHAVIOUR',
  'TRANSPORT_CLOSED',
  'HOP_LIMIT',
  'NAME_TAKEN',
  'MAILBOX_FULL',
  'SHUTDOWN',
  'SERIALIZATION',
  'JOB_FAILED',
  'MISSING_PACKAGE',
  'ABORTED',
] as const;

/** One of the core's own {@link ERROR_CODES}. */
export type CoreErrorCode = (typeof ERROR_CODES)[number];

/**
 * Codes that layers above the core add to what a {@link TroupeError} may carry, by declaration
 * merging (`troupe/patterns` adds `NO_WORKER` and `WORKER_LOST`). Each key is a code.
 * @example
 * declare module 'troupe' { interface ErrorCodeExtensions { MY_CODE: true } }
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by declaration merging
export interface ErrorCodeExtensions {}

/** A code a {@link TroupeError} may carry: the core's, or one a layer above it added. */
export type ErrorCode = CoreErrorCode | keyof ErrorCodeExtensions;

const codeSet: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `x` is one of the core's error codes. */
export function isErrorCode(x: unknown): x is CoreErrorCode {
  return typeof x === 'string' && codeSet.has(x);
}

/**
 * The one error class troupe throws or rejects with.
 *
 * @example
 * try { await ref.call(msg, { timeout: 100 }) }
 * catch (e) { if (e instanceof TroupeError && e.code === 'TIMEOUT') retry() }
 */
export class TroupeError extends Error {
  override readonly name = 'TroupeError';
  /** What went wrong: one of {@link ERROR_CODES}, or a code a layer above the core added. */
  readonly code: ErrorCode;
  /** Structured context: zod issues for `INVALID_MESSAGE`, the exit reason for `ACTOR_EXITED`, … */
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
  }

  /** Plain data for the wire; the stack only when asked for. */
  toData(withStack = false): ErrorData {
    const data: ErrorData = { code: this.code, message: this.message };
    if (this.details !== undefined) data.details = this.details;
    if (withStack && this.stack) data.stack = this.stack;
    return data;
  }

  /** Rebuild an error that crossed the wire; unknown codes become `PROTOCOL_ERROR`. */
  static fromData(data: unknown): TroupeError {
    if (data && typeof data === 'object') {
      const d = data as Partial<ErrorData>;
      const code = isErrorCode(d.code) ? d.code : 'PROTOCOL_ERROR';
      const err = new TroupeError(
        code,
        typeof d.message === 'string' ? d.message : 'remote error',
        {
          details: d.details,
        },
      );
      if (typeof d.stack === 'string') err.stack = d.stack;
      return err;
    }
    return new TroupeError('PROTOCOL_ERROR', 'malformed remote error');
  }
}

/** The wire form of a {@link TroupeError}. */
export interface ErrorData {
  code: ErrorCode;
  message: string;
  details?: unknown;
  stack?: string;
}

/**
 * Turn anything thrown into a {@link TroupeError}; `fallback` is the code for foreign errors.
 */
export function toTroupeError(err: unknown, fallback: ErrorCode = 'PROTOCOL_ERROR'): TroupeError {
  if (err instanceof TroupeError) return err;
  if (err instanceof Error) return new TroupeError(fallback, err.message, { cause: err });
  return new TroupeError(fallback, typeof err === 'string' ? err : 'unknown error', { cause: err });
}

import { TroupeError } from './errors.ts';

/**
 * Why an actor ended: `normal`, `killed`, `shutdown`, `noproc` (it did not exist),
 * `noconnection` (its node was lost), an {@link ErrorReason} when it threw, or the value passed
 * to `exit(ref, reason)` (any other string, or data that crosses the wire).
 */
export type ExitReason =
  | 'normal'
  | 'killed'
  | 'shutdown'
  | 'noproc'
  | 'noconnection'
  | ErrorReason
  | (string & {})
  | CustomReason;

/** A reason given as data to `exit(ref, reason)`: anything the codec carries but a function. */
export type CustomReason =
  | number
  | boolean
  | null
  | readonly unknown[]
  | { readonly [key: string]: unknown };

/** The exit reason of an actor that threw. */
export interface ErrorReason {
  type: 'error';
  name: string;
  message: string;
  /** The `code` of a {@link TroupeError}, when it was one. */
  code?: string;
  /** The stack, only when the node has `exposeStacks` on. */
  stack?: string;
}

/** Whether `r` is the reason of an actor that threw. */
export function isErrorReason(r: unknown): r is ErrorReason {
  return (
    typeof r === 'object' &&
    r !== null &&
    (r as ErrorReason).type === 'error' &&
    typeof (r as ErrorReason).message === 'string'
  );
}

/** Turn a thrown value into an exit reason. @internal */
export function errorReason(err: unknown, withStack: boolean): ErrorReason {
  if (err instanceof Error) {
    const r: ErrorReason = { type: 'error', name: err.name, message: err.message };
    if (err instanceof TroupeError) r.code = err.code;
    if (withStack && err.stack) r.stack = err.stack;
    return r;
  }
  return {
    type: 'error',
    name: 'Error',
    message: typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err)),
  };
}

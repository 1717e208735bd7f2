import type { z } from 'zod';
import { aborted, onAbort } from './abort.ts';
import type { Clock } from './clock.ts';
import { TroupeError } from './errors.ts';

/**
 * Selective receive: what selects a message (a zod schema or a predicate) and a pending receive.
 */

/** What `receive` accepts to select a message: a zod schema or a predicate. */
export type Matcher = z.ZodType | ((m: unknown) => boolean);

/** Options of `receive`. */
export interface ReceiveOptions {
  /** Milliseconds to wait for a matching message before rejecting with `TIMEOUT`. @default Infinity */
  timeout?: number;
  /** Stop waiting when it aborts: `receive` rejects with `ABORTED`; the mailbox is left as it was. @default undefined */
  signal?: AbortSignal;
}

/** A pending `receive`. */
export interface Waiter {
  matcher: Matcher | undefined;
  resolve: (m: unknown) => void;
  reject: (e: unknown) => void;
  timer: unknown;
  /** Stops listening to the receive's AbortSignal. */
  off: (() => void) | undefined;
}

function isSchema(m: Matcher): m is z.ZodType {
  return typeof (m as z.ZodType).safeParse === 'function';
}

/**
 * Returns the matched message (the schema's output for zod) or `NO_MATCH`.
 */
export const NO_MATCH = Symbol('no match');
export function match(matcher: Matcher | undefined, msg: unknown): unknown {
  if (matcher === undefined) return msg;
  if (isSchema(matcher)) {
    const r = matcher.safeParse(msg);
    return r.success ? r.data : NO_MATCH;
  }
  return matcher(msg) ? msg : NO_MATCH;
}

/**
 * Wait for the next message `matcher` selects (the mailbox held none): `slot.waiter` holds the
 * wait until a message, the timeout or the abort of `options.signal` ends it.
 */
export function waitFor(
  slot: { waiter: Waiter | undefined },
  clock: Clock,
  matcher: Matcher | undefined,
  options: ReceiveOptions | undefined,
): Promise<unknown> {
  const timeout = options?.timeout;
  const signal = options?.signal;
  return new Promise((resolve, reject) => {
    const w: Waiter = { matcher, resolve, reject, timer: undefined, off: undefined };
    if (timeout !== undefined && timeout !== Infinity) {
      w.timer = clock.setTimeout(() => {
        if (slot.waiter !== w) return;
        slot.waiter = undefined;
        w.off?.();
        reject(new TroupeError('TIMEOUT', `receive timed out after ${timeout} ms`));
      }, timeout);
    }
    if (signal !== undefined) {
      w.off = onAbort(signal, () => {
        if (slot.waiter !== w) return;
        slot.waiter = undefined;
        if (w.timer !== undefined) clock.clearTimeout(w.timer);
        reject(aborted(signal, 'receive'));
      });
    }
    slot.waiter = w;
  });
}

import { TroupeError } from './errors.ts';

/**
 * The error of an aborted call, receive or stream: `ABORTED`, its `cause` the signal's reason.
 * @internal
 */
export function aborted(signal: AbortSignal, what = 'call'): TroupeError {
  return new TroupeError('ABORTED', `${what} aborted`, { cause: signal.reason });
}

/**
 * Run `onAbort` once when `signal` aborts (at once, in a microtask, if it already has); returns
 * a function that stops listening. Without a signal it does nothing. @internal
 */
export function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (signal === undefined) return noop;
  if (signal.aborted) {
    let live = true;
    queueMicrotask(() => live && fn());
    return () => {
      live = false;
    };
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

function noop(): void {}

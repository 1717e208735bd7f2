import { afterEach, expect } from 'vitest';
import {
  createNode,
  TroupeError,
  type Node,
  type NodeOptions,
  type ErrorCode,
} from '../../core/index.ts';

/**
 * Nodes made through the returned factory are shut down after each test, so no heartbeat timer
 * or actor outlives its test.
 */
export function useNodes(): (options?: NodeOptions) => Node {
  const made: Node[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((n) => n.shutdown()));
  });
  return (options = {}) => {
    const n = createNode(options);
    made.push(n);
    return n;
  };
}

/** Let queued microtasks and one macrotask run (memory links deliver in microtasks). */
export function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/** Several macrotask turns: enough for a few hops over memory links. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await tick();
}

/**
 * Wait until `cond()` holds, polling on macrotask turns; fails with `what` after `ms` of real
 * time. A guard against hangs, not a timing assertion.
 */
export async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Resolve as `p` does, or fail after `ms` of real time. Used with a manual clock that is never
 * advanced: a promise that settles proves it did not need its timeout.
 */
export function within<T>(p: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Await a promise that must reject with a {@link TroupeError} of `code`; returns the error. */
export async function rejects(
  p: Promise<unknown>,
  code: ErrorCode,
  what = 'the promise',
): Promise<TroupeError> {
  let value: unknown;
  try {
    value = await within(p, what);
  } catch (err) {
    expect(err, `${what} should reject with a TroupeError`).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code, `${what}: ${(err as Error).message}`).toBe(code);
    return err as TroupeError;
  }
  throw new Error(`${what} resolved with ${String(value)} instead of rejecting with ${code}`);
}

/** Whether a promise is still pending after the queued work ran. */
export async function isPending(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await settle(2);
  return !done;
}

/** Collect every event of one type a node emits. */
export function collect<E>(on: (fn: (e: E) => void) => () => void): E[] {
  const out: E[] = [];
  on((e) => out.push(e));
  return out;
}

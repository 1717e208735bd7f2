import type { Clock } from './clock.ts';
import { aborted } from './abort.ts';
import { TroupeError } from './errors.ts';

/** One call waiting for its reply. */
interface PendingCall {
  id: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Settled (replied, rejected or timed out): skipped by its timeout queue. */
  done: boolean;
  deadline: number;
  /** Its timeout value (the key of its timeout queue). */
  ms: number;
  target: string;
  /** Runs synchronously when the reply is accepted, before any later envelope is handled. */
  onReply?: (value: unknown) => void;
  /** The caller's AbortSignal and its listener, removed when the call settles. */
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Cancellation of one call: its signal, and what tells the callee (run once, on abort). */
export interface CallAbort {
  signal: AbortSignal;
  cancel: (callId: number) => void;
}

/** The calls made with one timeout value, oldest first, and the timer of the oldest live one. */
interface TimeoutQueue {
  q: PendingCall[];
  head: number;
  timer: unknown;
}

/**
 * A node's pending calls, by call id, with their timeouts. @internal
 *
 * Call timeouts without a timer per call: calls with the same timeout value expire in the order
 * they were made, so each value keeps a FIFO of calls and one timer for its oldest live call.
 */
export class CallTable {
  #calls = new Map<number, PendingCall>();
  #nextCall = 1;
  #timeouts = new Map<number, TimeoutQueue>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of calls waiting for their reply. */
  get size(): number {
    return this.#calls.size;
  }

  /** Whether call `callId` is still waiting for its reply. */
  has(callId: number): boolean {
    return this.#calls.has(callId);
  }

  /**
   * Register a call to node `target` (`s`: its session count now) that times out after `ms`, then
   * run `start(callId)`; a returned error rejects the call at once. `onReply` runs synchronously
   * when the reply is accepted.
   */
  open(target: string, ms: number, start: (callId: number) => TroupeError | undefined, onReply?: (v: unknown) => void, abort?: CallAbort): Promise<unknown> {
    if (abort?.signal.aborted) return Promise.reject(aborted(abort.signal));
    const callId = this.#nextCall++;
    return new Promise((resolve, reject) => {
      const c: PendingCall = { id: callId, resolve, reject, done: false, deadline: this.#clock.now() + ms, ms, target, onReply };
      this.#calls.set(callId, c);
      this.#armTimeout(c, ms);
      const err = start(callId);
      if (err) return this.settle(callId, false, err);
      if (abort !== undefined) {
        const signal = abort.signal;
        c.signal = signal;
        c.onAbort = () => {
          if (c.done) return;
          this.settle(callId, false, aborted(signal));
          abort.cancel(callId);
        };
        signal.addEventListener('abort', c.onAbort, { once: true });
      }
    });
  }

  #armTimeout(c: PendingCall, ms: number): void {
    let tq = this.#timeouts.get(ms);
    if (tq === undefined) this.#timeouts.set(ms, (tq = { q: [], head: 0, timer: undefined }));
    tq.q.push(c);
    if (tq.timer === undefined) tq.timer = this.#clock.setTimeout(() => this.#expire(ms), ms);
  }

  #expire(ms: number): void {
    const tq = this.#timeouts.get(ms);
    if (tq === undefined) return;
    tq.timer = undefined;
    const now = this.#clock.now();
    const q = tq.q;
    while (tq.head < q.length) {
      const c = q[tq.head];
      if (!c.done) {
        if (c.deadline > now) break;
        c.done = true;
        this.#calls.delete(c.id);
        if (c.onAbort !== undefined) c.signal!.removeEventListener('abort', c.onAbort);
        c.reject(new TroupeError('TIMEOUT', `call timed out after ${ms} ms`));
      }
      q[tq.head++] = undefined as unknown as PendingCall;
    }
    this.#compactTimeouts(tq);
    if (tq.head < q.length) tq.timer = this.#clock.setTimeout(() => this.#expire(ms), q[tq.head].deadline - now);
    else this.#timeouts.delete(ms);
  }

  #compactTimeouts(tq: TimeoutQueue): void {
    if (tq.head === tq.q.length) {
      tq.q.length = 0;
      tq.head = 0;
    } else if (tq.head > 1024 && tq.head * 2 > tq.q.length) {
      tq.q.splice(0, tq.head);
      tq.head = 0;
    }
  }

  /** Resolve (`ok`) or reject call `callId` with `value`, if it is still waiting. */
  settle(callId: number, ok: boolean, value: unknown): void {
    const c = this.#calls.get(callId);
    if (!c) return;
    this.#calls.delete(callId);
    c.done = true;
    // Calls mostly settle in the order they were made: drop settled ones from the front of the
    // timeout queue now, so it holds only calls still pending (and the few that overtook them).
    const tq = this.#timeouts.get(c.ms);
    if (tq !== undefined) {
      const q = tq.q;
      while (tq.head < q.length && q[tq.head].done) q[tq.head++] = undefined as unknown as PendingCall;
      this.#compactTimeouts(tq);
    }
    if (c.onAbort !== undefined) c.signal!.removeEventListener('abort', c.onAbort);
    if (ok) {
      c.onReply?.(value);
      c.resolve(value);
    } else {
      c.reject(value);
    }
  }

  /** Reject with `NODE_DOWN` every call to `node` (its session ended). */
  dropNode(node: string, reason: string): void {
    for (const [id, c] of this.#calls) {
      if (c.target !== node) continue;
      this.#calls.delete(id);
      c.done = true;
      if (c.onAbort !== undefined) c.signal!.removeEventListener('abort', c.onAbort);
      c.reject(new TroupeError('NODE_DOWN', `node ${node} is down (${reason})`));
    }
  }

  /** Reject every pending call with an error made by `error`, and stop the timers (shutdown). */
  rejectAll(error: () => TroupeError): void {
    for (const [id, c] of this.#calls) {
      this.#calls.delete(id);
      c.done = true;
      if (c.onAbort !== undefined) c.signal!.removeEventListener('abort', c.onAbort);
      c.reject(error());
    }
    for (const tq of this.#timeouts.values()) if (tq.timer !== undefined) this.#clock.clearTimeout(tq.timer);
    this.#timeouts.clear();
  }
}


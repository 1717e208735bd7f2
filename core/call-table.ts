import { aborted } from './abort.ts';
import type { Clock } from './clock.ts';
import { TroupeError } from './errors.ts';

/** One call waiting for its reply. */
interface PendingCall {
  id: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Settled (replied, rejected or timed out): skipped by its timeout queue and its window. */
  done: boolean;
  /** When it times out; set when its window closes (NaN until then). */
  deadline: number;
  /** Its timeout value (the key of its timeout queue). */
  ms: number;
  target: string;
  /** In its timeout queue (its window closed while it was still waiting). */
  queued: boolean;
  /** Runs synchronously when the reply is accepted, before any later envelope is handled. */
  onReply: ((value: unknown) => void) | undefined;
  /** The caller's AbortSignal and its listener, removed when the call settles. */
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
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

/** What starts a call once it has its id (`a`, `b`: its arguments, so no closure per call). */
export type CallStart<A, B> = (callId: number, a: A, b: B) => TroupeError | undefined;

/**
 * A node's pending calls, by call id, with their timeouts. @internal
 *
 * No timer per call. Calls to this node's own actors (`target` is `self`, or every call when the
 * table has no `self`) are opened into the current *window*; the first call of a window arms
 * one zero-delay timer, and when it fires the clock is read once and every call of the window
 * still waiting gets its deadline: that time plus its timeout. So a call times out no earlier
 * than its timeout after it was made, and at most one timer turn later (on a manual clock,
 * exactly on time: the window closes before time advances). Calls answered within their window
 * — most local calls — never read the clock nor touch a timeout queue.
 *
 * Calls to other nodes take their deadline when they are made (one clock read each) and go
 * straight to their timeout queue: their round trip takes longer than a clock read, and a short
 * timer re-armed every millisecond while they stream (the window's) made each round trip over a
 * worker's MessagePort about 1 µs slower and 2 µs costlier in CPU (a pending short timer makes
 * the event loop's waits dearer), where a long one (a timeout queue's) costs nothing.
 *
 * Calls with the same timeout value expire in the order they were made, so each value keeps a
 * FIFO of calls (in deadline order: a call joins it when its deadline is set, from a clock that
 * does not go back) and one timer for its oldest live call.
 */
export class CallTable {
  #calls = new CallMap();
  #nextCall = 1;
  #timeouts = new Map<number, TimeoutQueue>();
  /** Calls opened since the window timer was armed. */
  #window: PendingCall[] = [];
  /** Calls before this index in #window are settled. */
  #windowHead = 0;
  #windowTimer: unknown = undefined;
  readonly #clock: Clock;
  /** This node's id: calls to it use the window, others are queued when made (see above). */
  readonly #self: string | undefined;
  readonly #closeWindow = (): void => this.#close();
  // The executor every call's promise is made with hands its resolve/reject functions over
  // through these two slots: one closure per table, none per call (Promise.withResolvers is
  // Node 22+).
  #slotResolve: (v: unknown) => void = noop;
  #slotReject: (e: unknown) => void = noop;
  readonly #executor = (resolve: (v: unknown) => void, reject: (e: unknown) => void): void => {
    this.#slotResolve = resolve;
    this.#slotReject = reject;
  };

  constructor(clock: Clock, self?: string) {
    this.#clock = clock;
    this.#self = self;
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
   * Register a call to node `target` that times out after `ms`, then run `start(callId, a, b)`;
   * a returned error rejects the call at once. `onReply` runs synchronously when the reply is
   * accepted. With `abort`, an abort of its signal rejects the call with `ABORTED` and runs
   * `abort.cancel(callId)` to tell the callee.
   */
  open<A = undefined, B = undefined>(
    target: string,
    ms: number,
    start: CallStart<A, B>,
    a?: A,
    b?: B,
    onReply?: (v: unknown) => void,
    abort?: CallAbort,
  ): Promise<unknown> {
    if (abort?.signal.aborted) return Promise.reject(aborted(abort.signal));
    const callId = this.#nextCall++;
    const promise = new Promise(this.#executor);
    const c: PendingCall = {
      id: callId,
      resolve: this.#slotResolve,
      reject: this.#slotReject,
      done: false,
      deadline: NaN,
      ms,
      target,
      queued: false,
      onReply,
      signal: undefined,
      onAbort: undefined,
    };
    this.#calls.add(c);
    if (this.#self === undefined || target === this.#self) {
      this.#window.push(c);
      if (this.#windowTimer === undefined)
        this.#windowTimer = this.#clock.setTimeout(this.#closeWindow, 0);
    } else {
      this.#queue(c, this.#clock.now());
    }
    const err = start(callId, a as A, b as B);
    if (err) {
      this.settle(callId, false, err);
      return promise;
    }
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
    return promise;
  }

  /** Stop listening to a settled call's AbortSignal. */
  #unlisten(c: PendingCall): void {
    if (c.onAbort !== undefined) c.signal?.removeEventListener('abort', c.onAbort);
  }

  /** The window timer fired: give its calls still waiting their deadlines and queue them. */
  #close(): void {
    this.#windowTimer = undefined;
    const w = this.#window;
    const head = this.#windowHead;
    this.#windowHead = 0;
    if (w.length === head) {
      w.length = 0;
      return;
    }
    this.#window = [];
    const now = this.#clock.now();
    for (let i = head; i < w.length; i++) {
      const c = w[i];
      if (!c.done) this.#queue(c, now);
    }
  }

  /** Give call `c` its deadline (`now` plus its timeout) and put it in its timeout queue. */
  #queue(c: PendingCall, now: number): void {
    c.deadline = now + c.ms;
    c.queued = true;
    let tq = this.#timeouts.get(c.ms);
    if (tq === undefined) this.#timeouts.set(c.ms, (tq = { q: [], head: 0, timer: undefined }));
    tq.q.push(c);
    if (tq.timer === undefined) this.#arm(tq, c.ms, c.ms);
  }

  #arm(tq: TimeoutQueue, ms: number, delay: number): void {
    tq.timer = this.#clock.setTimeout(() => this.#expire(ms), delay);
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
        this.#unlisten(c);
        c.reject(new TroupeError('TIMEOUT', `call timed out after ${ms} ms`));
      }
      q[tq.head++] = undefined as unknown as PendingCall;
    }
    this.#compactTimeouts(tq);
    if (tq.head < q.length) this.#arm(tq, ms, q[tq.head].deadline - now);
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
    if (c === undefined) return;
    this.#calls.delete(callId);
    c.done = true;
    // Keep the window from holding calls already answered (a loop of awaited local calls may run
    // for a long time in microtasks, with no timer turn to close the window): drop settled calls
    // from both of its ends.
    const w = this.#window;
    let end = w.length;
    if (end !== 0) {
      while (end !== 0 && w[end - 1].done) {
        w.pop();
        end--;
      }
      let head = this.#windowHead;
      while (head < end && w[head].done) head++;
      if (head === end) {
        if (end !== 0) w.length = 0;
        head = 0;
      }
      this.#windowHead = head;
    }
    if (c.queued) {
      // Calls mostly settle in the order they were made: drop settled ones from the front of the
      // timeout queue now, so it holds only calls still pending (and the few that overtook them).
      const tq = this.#timeouts.get(c.ms);
      if (tq !== undefined) {
        const q = tq.q;
        while (tq.head < q.length && q[tq.head].done)
          q[tq.head++] = undefined as unknown as PendingCall;
        this.#compactTimeouts(tq);
      }
    }
    this.#unlisten(c);
    if (ok) {
      if (c.onReply !== undefined) c.onReply(value);
      c.resolve(value);
    } else {
      c.reject(value);
    }
  }

  /** Reject with `NODE_DOWN` every call to `node` (its session ended). */
  dropNode(node: string, reason: string): void {
    for (const c of this.#calls.values()) {
      if (c.target !== node) continue;
      this.#calls.delete(c.id);
      c.done = true;
      this.#unlisten(c);
      c.reject(new TroupeError('NODE_DOWN', `node ${node} is down (${reason})`));
    }
  }

  /** Reject every pending call with an error made by `error`, and stop the timers (shutdown). */
  rejectAll(error: () => TroupeError): void {
    for (const c of this.#calls.values()) {
      this.#calls.delete(c.id);
      c.done = true;
      this.#unlisten(c);
      c.reject(error());
    }
    if (this.#windowTimer !== undefined) this.#clock.clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    this.#window = [];
    this.#windowHead = 0;
    for (const tq of this.#timeouts.values())
      if (tq.timer !== undefined) this.#clock.clearTimeout(tq.timer);
    this.#timeouts.clear();
  }
}

function noop(): void {}

/** Slots of {@link CallMap}: a power of two, more than the calls usually pending at once. */
const SLOTS = 4096;

/**
 * Pending calls by id: call ids are sequential, so a call lives in slot `id % SLOTS` unless an
 * older call still waiting holds that slot (more than SLOTS calls pending, or one very slow), in
 * which case it goes to an overflow Map. Cheaper than a Map per call in the common case.
 */
class CallMap {
  #slots: (PendingCall | undefined)[] = new Array(SLOTS).fill(undefined);
  #overflow = new Map<number, PendingCall>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(c: PendingCall): void {
    const i = c.id & (SLOTS - 1);
    if (this.#slots[i] === undefined) this.#slots[i] = c;
    else this.#overflow.set(c.id, c);
    this.#size++;
  }

  get(id: number): PendingCall | undefined {
    const c = this.#slots[id & (SLOTS - 1)];
    if (c !== undefined && c.id === id) return c;
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  delete(id: number): void {
    const i = id & (SLOTS - 1);
    const c = this.#slots[i];
    if (c !== undefined && c.id === id) {
      this.#slots[i] = undefined;
      this.#size--;
    } else if (this.#overflow.delete(id)) {
      this.#size--;
    }
  }

  /** A snapshot of the pending calls (safe to delete while iterating). */
  values(): PendingCall[] {
    const out: PendingCall[] = [];
    for (const c of this.#slots) if (c !== undefined) out.push(c);
    for (const c of this.#overflow.values()) out.push(c);
    return out;
  }
}

import { aborted, onAbort } from './abort.ts';
import type { Clock } from './clock.ts';
import { TroupeError } from './errors.ts';

/**
 * End-to-end credit for awaited sends, per destination node (both sides of it). @internal
 *
 * Sender side: an awaited send of `bytes` to node `n` may leave when nothing is outstanding to
 * `n` (so a message of any size goes, alone) or when it fits in the window; otherwise it waits,
 * first come first served (a large message is not starved by small ones). Credit comes back from
 * `n` as its actors take the messages out of their mailboxes, so a slow actor — not only a slow
 * link — holds the sender back, and what waits anywhere on the path (sender's link, relays,
 * receiver's mailbox) stays within one window per sender.
 *
 * Receiver side: bytes taken are summed per origin and granted back once a quarter window has
 * accumulated, or after `flushMs` so the tail of a burst is not kept.
 */
export class CreditBook {
  readonly #window: number;
  readonly #clock: Clock;
  readonly #grant: (node: string, bytes: number) => void;
  readonly #flushMs: number;
  /** Sender side: bytes sent and not yet granted back, per destination node. */
  #outstanding = new Map<string, number>();
  #waiting = new Map<string, Waiter[]>();
  /** Receiver side: bytes taken and not yet granted back, per origin node. */
  #taken = new Map<string, number>();
  #timer: unknown = undefined;

  /** `grant(node, bytes)` sends a credit envelope to `node`. */
  constructor(
    window: number,
    clock: Clock,
    grant: (node: string, bytes: number) => void,
    flushMs = 2,
  ) {
    this.#window = Math.max(1, window);
    this.#clock = clock;
    this.#grant = grant;
    this.#flushMs = flushMs;
  }

  /** Bytes sent to `node` and not yet granted back. */
  outstanding(node: string): number {
    return this.#outstanding.get(node) ?? 0;
  }

  /**
   * Take `bytes` of credit toward `node`: undefined when the send may go now (the credit is
   * taken), else a promise that resolves when it may (the credit is then taken).
   * @throws (the promise) `NODE_DOWN` when the node is lost meanwhile, `ABORTED` on `signal`.
   */
  acquire(node: string, bytes: number, signal?: AbortSignal): Promise<void> | undefined {
    const out = this.#outstanding.get(node) ?? 0;
    const queue = this.#waiting.get(node);
    if (queue === undefined && (out === 0 || out + bytes <= this.#window)) {
      this.#outstanding.set(node, out + bytes);
      return undefined;
    }
    if (signal?.aborted) return Promise.reject(aborted(signal, 'send'));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { bytes, resolve, reject, off: () => {} };
      w.off = onAbort(signal, () => {
        const q = this.#waiting.get(node);
        const i = q?.indexOf(w) ?? -1;
        if (i < 0) return;
        q!.splice(i, 1);
        if (q!.length === 0) this.#waiting.delete(node);
        reject(aborted(signal!, 'send'));
        // The head may have been blocking those behind it.
        this.#wake(node);
      });
      if (queue === undefined) this.#waiting.set(node, [w]);
      else queue.push(w);
    });
  }

  /** `node` granted `bytes` back (a bogus grant is clamped to what is outstanding). */
  release(node: string, bytes: number): void {
    const out = this.#outstanding.get(node);
    if (out === undefined) return;
    const left = out - Math.min(out, bytes);
    if (left === 0) this.#outstanding.delete(node);
    else this.#outstanding.set(node, left);
    this.#wake(node);
  }

  #wake(node: string): void {
    const q = this.#waiting.get(node);
    if (q === undefined) return;
    let out = this.#outstanding.get(node) ?? 0;
    while (q.length > 0 && (out === 0 || out + q[0].bytes <= this.#window)) {
      const w = q.shift()!;
      out += w.bytes;
      w.off();
      w.resolve();
    }
    this.#outstanding.set(node, out);
    if (q.length === 0) this.#waiting.delete(node);
  }

  /** Our session with `node` ended: what was outstanding is gone, waiting sends fail `NODE_DOWN`. */
  dropNode(node: string, reason: string): void {
    this.#outstanding.delete(node);
    this.#taken.delete(node);
    const q = this.#waiting.get(node);
    if (q === undefined) return;
    this.#waiting.delete(node);
    for (const w of q) {
      w.off();
      w.reject(new TroupeError('NODE_DOWN', `node ${node} is down (${reason})`));
    }
  }

  /** Receiver side: an actor took (or the node dropped) `bytes` of an awaited send from `origin`. */
  taken(origin: string, bytes: number): void {
    const t = (this.#taken.get(origin) ?? 0) + bytes;
    if (t * 4 >= this.#window) {
      this.#taken.delete(origin);
      this.#grant(origin, t);
      return;
    }
    this.#taken.set(origin, t);
    if (this.#timer === undefined) this.#timer = this.#clock.setTimeout(this.#flush, this.#flushMs);
  }

  #flush = (): void => {
    this.#timer = undefined;
    const all = [...this.#taken];
    this.#taken.clear();
    for (const [origin, bytes] of all) this.#grant(origin, bytes);
  };

  /** Shutdown: stop the timer, fail every waiting send with `error`. */
  close(error: () => TroupeError): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const q of this.#waiting.values()) {
      for (const w of q) {
        w.off();
        w.reject(error());
      }
    }
    this.#waiting.clear();
    this.#outstanding.clear();
    this.#taken.clear();
  }
}

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
  off: () => void;
}

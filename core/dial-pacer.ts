/**
 * Automatic dials in flight at once (gossip, discovery, repair); more wait for one to end. A node
 * that joins a mesh of N learns N−1 members at once: dialing them all together on a loaded
 * machine makes every handshake time out, then back off, and the mesh stays half-built.
 */
export const MAX_AUTO_DIALS = 8;
/** Longest wait between automatic dials to a node that keeps failing, in ms. */
export const MAX_DIAL_BACKOFF = 15_000;
/** The wait after a first failed dial, in ms (it doubles per failure, with jitter). */
const FIRST_BACKOFF = 1000;

/**
 * Paces a connector's automatic dials (a part of the Connector): per node, a backoff after a
 * failed dial that doubles per failure (jittered, up to {@link MAX_DIAL_BACKOFF}); overall, at
 * most {@link MAX_AUTO_DIALS} in flight, the others waiting for a turn. Urgent dials (rescues,
 * bound by the heartbeat timeout) skip both. @internal
 */
export class DialPacer {
  /** When a dial to a node last failed and the wait before the next. */
  readonly #failed = new Map<string, { at: number; wait: number }>();
  #inFlight = 0;
  readonly #waiting = new Set<string>();

  /** Whether a dial to `node` may start at `now` as far as its backoff goes. */
  due(node: string, now: number, urgent: boolean): boolean {
    const failed = this.#failed.get(node);
    return urgent || failed === undefined || now - failed.at >= failed.wait;
  }

  /** Take a dial slot for `node`; false (and `node` waits for a turn) when none is free. */
  take(node: string, urgent: boolean): boolean {
    if (!urgent && this.#inFlight >= MAX_AUTO_DIALS) {
      this.#waiting.add(node);
      return false;
    }
    this.#waiting.delete(node);
    this.#inFlight++;
    return true;
  }

  /** A dial ended: its slot is free. Returns the nodes waiting for a turn, oldest first. */
  release(): Iterable<string> {
    this.#inFlight--;
    return this.#waiting;
  }

  /** Whether a slot is free for a waiting node (which is then no longer waiting). */
  turn(node: string): boolean {
    if (this.#inFlight >= MAX_AUTO_DIALS) return false;
    this.#waiting.delete(node);
    return true;
  }

  /** A dial to `node` failed at `now`: double its wait. */
  failed(node: string, now: number): void {
    const last = this.#failed.get(node)?.wait ?? FIRST_BACKOFF / 2;
    this.#failed.set(node, {
      at: now,
      wait: Math.min(MAX_DIAL_BACKOFF, last * 2) * (0.75 + Math.random() / 2),
    });
  }

  /** `node` is linked (or must be dialed at once): forget its failures. */
  forget(node: string): void {
    this.#failed.delete(node);
  }

  /** Shutdown: nobody waits any more. */
  clear(): void {
    this.#waiting.clear();
  }
}

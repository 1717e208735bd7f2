import type { Actor } from './actor.ts';

/** Messages handled per scheduler turn before yielding to the host's event loop. */
const TURN_BUDGET = 50_000;
/** Longest scheduler turn in ms before yielding to the host's event loop. */
const TURN_MS = 8;
/** Messages handled between two looks at the clock. */
const DRAIN_CHUNK = 256;
/** Messages one actor handles before the next ready actor gets a turn. */
const ACTOR_BUDGET = 1024;

/**
 * A node's run queue of behaviour actors with messages to handle. Ready actors are drained in
 * one microtask, up to a budget of messages and time per turn; then the scheduler yields to the
 * host's event loop (a macrotask) so I/O, timers and the links' flushes run. @internal
 */
export class Scheduler {
  /** The actor handling messages now (undefined between actors). */
  running: Actor | undefined;
  #runq: Actor[] = [];
  #drainScheduled = false;
  /**
   * A settled promise whose `then` queues the drain: a bare microtask (a host's
   * `queueMicrotask` may wrap each callback in more, as Node does for async context).
   */
  readonly #settled: Promise<void> = Promise.resolve();

  /** Put a behaviour actor on the run queue. */
  schedule(actor: Actor): void {
    actor.scheduled = true;
    this.#runq.push(actor);
    if (!this.#drainScheduled) {
      this.#drainScheduled = true;
      this.#settled.then(this.#drain);
    }
  }

  /**
   * Drain ready actors in one microtask, up to a budget, then yield to the event loop. A turn
   * that starts with one message (a local call's round trip) reads no clock unless that message
   * leaves more work behind: then the turn is timed from there.
   */
  #drain = (): void => {
    const q = this.#runq;
    let start = q.length === 1 && q[0].mailboxSize === 1 ? -1 : performance.now();
    let budget = TURN_BUDGET;
    let timeUp = false;
    let i = 0;
    while (i < q.length && budget > 0 && !timeUp) {
      const actor = q[i++];
      actor.scheduled = false;
      this.running = actor;
      // The first message alone, then chunks, with a look at the clock in between: a turn of
      // slow handlers yields after TURN_MS, so replies (flushed when the turn ends), heartbeats
      // and I/O are not held back behind a long queue of work.
      const cap = ACTOR_BUDGET < budget ? ACTOR_BUDGET : budget;
      let n = 0;
      while (n < cap) {
        const k = actor.drain(n === 0 ? 1 : Math.min(DRAIN_CHUNK, cap - n));
        if (k === 0) break;
        n += k;
        if (i === q.length && !actor.runnable) break;
        const t = performance.now();
        if (start < 0) start = t;
        else if (t - start > TURN_MS) {
          timeUp = true;
          break;
        }
      }
      budget -= n;
      this.running = undefined;
      if (!actor.scheduled && actor.runnable) {
        actor.scheduled = true;
        q.push(actor);
      }
    }
    if (i === q.length) {
      if (i === 1) q.pop();
      else q.length = 0;
    } else q.splice(0, i);
    if (q.length === 0) {
      this.#drainScheduled = false;
      return;
    }
    // Budget spent: let I/O, timers and the links' flushes run before the next turn.
    setTimeout(this.#drain, 0);
  };
}

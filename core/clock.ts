/**
 * The timer source a node uses for call timeouts, receive timeouts, heartbeats and handshakes.
 * Inject {@link createManualClock} in tests to drive time by hand.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The host's real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => (clearTimeout as (handle: unknown) => void)(h),
};

/** A clock that only moves when told to: `advance(ms)` fires due timers in order. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  /** Number of timers not yet fired or cleared. */
  pending(): number;
}

/** Create a {@link ManualClock} starting at `start` ms. */
export function createManualClock(start = 0): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout(h) {
      timers.delete(h as number);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let nextId = -1;
        let nextAt = Infinity;
        for (const [id, t] of timers)
          if (t.at <= end && t.at < nextAt) [nextId, nextAt] = [id, t.at];
        if (nextId < 0) break;
        const t = timers.get(nextId)!;
        timers.delete(nextId);
        now = t.at;
        t.fn();
      }
      now = end;
    },
    pending: () => timers.size,
  };
}

// Shared pieces of the flow-control tests: a producer that never slows down, a consumer that
// takes about N messages/s and checks order, dead-letter counting, and the whole run of one
// against the other (flood).
import { expect } from 'vitest';
import type { ActorRef, Node } from '../../core/index.ts';
import { MemoryProbe } from './memory-probe.ts';
import { p99 } from '../../bench/stats.ts';

/** ~200 characters per message: 1M of them held anywhere would be ≥ 200 MB. */
export const PAD = 'p'.repeat(180);

/** What a consumer saw. */
export interface Seen {
  delivered: number;
  /** Messages whose seq was not above the previous one's (reordered or duplicated). */
  notIncreasing: number;
  last: number;
}

/** A consumer that takes about `perSecond` messages/s (it sleeps 10 ms every perSecond/100). */
export function slowConsumer(
  node: Node,
  perSecond: number,
  maxMailbox: number,
): { ref: ActorRef; seen: Seen } {
  const seen: Seen = { delivered: 0, notIncreasing: 0, last: -1 };
  const every = Math.max(1, Math.round(perSecond / 100));
  const ref = node.spawn(
    async (self) => {
      for (;;) {
        const m = (await self.receive()) as { seq: number };
        if (m.seq <= seen.last) seen.notIncreasing++;
        seen.last = m.seq;
        seen.delivered++;
        if (seen.delivered % every === 0) await new Promise((r) => setTimeout(r, 10));
      }
    },
    { maxMailbox },
  );
  return { ref, seen };
}

/** Count a node's dead letters by reason. */
export function deadLetters(node: Node): Record<string, number> {
  const counts: Record<string, number> = {};
  node.events.on('deadLetter', (e) => {
    counts[e.reason] = (counts[e.reason] ?? 0) + 1;
  });
  return counts;
}

/** Send `count` messages `{ seq, pad }` as fast as the event loop allows (1000 per turn); never looks at backpressure. */
export async function produce(
  from: Node,
  to: ActorRef,
  count: number,
  onChunk?: () => void,
): Promise<void> {
  const ref = from.ref(to.node, to.id);
  for (let seq = 0; seq < count; ) {
    const end = Math.min(count, seq + 1000);
    for (; seq < end; seq++) ref.send({ seq, pad: PAD });
    onChunk?.();
    await new Promise((r) => setImmediate(r));
  }
}

/** Wait (bounded) until `cond()` holds; the failure shows `detail()`. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  ms: number,
  detail: () => string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end)
      throw new Error(`timed out after ${ms} ms waiting for ${what}: ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What {@link flood} measured. */
export interface Flood {
  seen: Seen;
  /** Dead letters at the sending node, by reason. */
  deadSender: Record<string, number>;
  /** Dead letters at the receiving node, by reason. */
  deadReceiver: Record<string, number>;
  /** Largest `queued` of the sender's link, sampled after every chunk of sends. */
  peakQueued: number;
  /** Whether the sender's link was ever seen holding envelopes back. */
  held: boolean;
  /** Retained memory over the run (started before the first send, stopped once all is accounted for). */
  probe: MemoryProbe;
  /** Delivered + `overflow` at the sender + `mailbox-full` at the receiver: `count` once the run is over. */
  accounted(): number;
}

/**
 * The fast producer / slow consumer run: a {@link slowConsumer} (~1k messages/s, mailbox 1000) on
 * `receiver`, `count` messages {@link produce}d at it from `sender` while watching the sender's
 * link, then a bounded wait until every message is delivered or dead-lettered. Asserts nothing:
 * the caller checks the {@link Flood} it returns.
 */
export async function flood(
  sender: Node,
  receiver: Node,
  count: number,
  waitMs = 45_000,
): Promise<Flood> {
  const deadSender = deadLetters(sender);
  const deadReceiver = deadLetters(receiver);
  const { ref, seen } = slowConsumer(receiver, 1000, 1000);
  const probe = new MemoryProbe(1000);
  const run: Flood = {
    seen,
    deadSender,
    deadReceiver,
    peakQueued: 0,
    held: false,
    probe,
    accounted: () =>
      seen.delivered + (deadSender.overflow ?? 0) + (deadReceiver['mailbox-full'] ?? 0),
  };
  try {
    await produce(sender, ref, count, () => {
      const s = sender.linkStats()[0];
      if (!s) return;
      run.peakQueued = Math.max(run.peakQueued, s.queued);
      run.held ||= s.holding;
    });
    probe.sample(); // the producer is done: the link's queue is at its fullest
    await waitFor(
      () => run.accounted() === count,
      'every message to be delivered or dead-lettered',
      waitMs,
      () => JSON.stringify({ seen, deadSender, deadReceiver, link: sender.linkStats()[0] }),
    );
  } finally {
    probe.stop();
  }
  return run;
}

/**
 * What a {@link flood} through a slow network must show: every one of `count` messages delivered
 * or dead-lettered, in order and never twice; only the two documented drops (`overflow` at the
 * sender, `mailbox-full` at the receiver); no link went down (`downs`: the sender's `linkDown`
 * reasons); the sender's link held back, and what it held stayed under `maxLinkQueue`.
 */
export function expectHeldThenDropped(
  run: Flood,
  count: number,
  maxLinkQueue: number,
  downs: string[],
): void {
  expect(run.accounted()).toBe(count);
  expect(run.seen.notIncreasing).toBe(0);
  expect(Object.keys(run.deadSender)).toEqual(['overflow']);
  expect(Object.keys(run.deadReceiver)).toEqual(['mailbox-full']);
  expect(downs).toEqual([]);
  expect(run.held).toBe(true);
  // (heartbeats and other control envelopes are never refused: a few chars of slack)
  expect(run.peakQueued).toBeLessThanOrEqual(maxLinkQueue + 1024);
}

/**
 * The p99 (nearest rank, bench/stats.ts) of `n` sequential calls from `node` to the actor
 * registered as `name`, in ms.
 */
export async function callP99(node: Node, name: string, n: number): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await node.call(name, null, { timeout: 30_000 });
    t.push(performance.now() - t0);
  }
  return p99(t);
}

// Shared pieces of the flow-control tests: a producer that never slows down, a consumer that
// takes about N messages/s and checks order, and dead-letter counting.
import type { ActorRef, Node } from '../../core/index.ts';

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
export function slowConsumer(node: Node, perSecond: number, maxMailbox: number): { ref: ActorRef; seen: Seen } {
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
export async function produce(from: Node, to: ActorRef, count: number, onChunk?: () => void): Promise<void> {
  const ref = from.ref(to.node, to.id);
  for (let seq = 0; seq < count; ) {
    const end = Math.min(count, seq + 1000);
    for (; seq < end; seq++) ref.send({ seq, pad: PAD });
    onChunk?.();
    await new Promise((r) => setImmediate(r));
  }
}

/** Wait (bounded) until `cond()` holds; the failure shows `detail()`. */
export async function waitFor(cond: () => boolean, what: string, ms: number, detail: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

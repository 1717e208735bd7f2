import { describe, it, expect } from 'vitest';
import { behaviour, reply, isDown, type ActorContext } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within } from './helpers/nodes.ts';

const N = 100_000;

/** A process that receives `n` messages and reports how many arrived in order. */
async function orderedSink(
  self: ActorContext<{ seq: number }>,
  n: number,
): Promise<{ received: number; firstOutOfOrder: number }> {
  let firstOutOfOrder = -1;
  for (let i = 0; i < n; i++) {
    const m = (await self.receive()) as { seq: number };
    if (firstOutOfOrder < 0 && m.seq !== i) firstOutOfOrder = i;
  }
  return { received: n, firstOutOfOrder };
}

describe('FIFO between a pair of actors', () => {
  const node = useNodes();

  it('keeps the order of 100k messages between two process actors in one node', async () => {
    const a = node({ name: 'a' });
    const sink = a.spawn((self) => orderedSink(self as ActorContext<{ seq: number }>, N));
    a.spawn(async () => {
      for (let i = 0; i < N; i++) {
        sink.send({ seq: i });
        // Yield now and then so sends interleave with the receiver's turns.
        if (i % 10_000 === 9_999) await new Promise((r) => setTimeout(r, 0));
      }
    });
    const down = await within(a.waitDown(sink), 'sink ends', 20_000);
    expect(down.reason).toBe('normal');
    expect(down.result).toEqual({ received: N, firstOutOfOrder: -1 });
  });

  it('keeps the order of 100k messages from a process to a behaviour in one node', async () => {
    const a = node({ name: 'a' });
    const sink = a.spawn(
      behaviour<{ seq: number } | 'count', { next: number; bad: number }>({
        init: () => ({ next: 0, bad: -1 }),
        handle: (m, s) => {
          if (m === 'count') return reply({ ...s }, s);
          if (s.bad < 0 && m.seq !== s.next) s.bad = s.next;
          s.next++;
          return s;
        },
      }),
    );
    const sender = a.spawn(async () => {
      for (let i = 0; i < N; i++) sink.send({ seq: i });
    });
    await a.waitDown(sender);
    // The call queues behind the 100k sends, so it answers after all of them were handled.
    expect(await sink.call('count', { timeout: 20_000 })).toEqual({ next: N, bad: -1 });
  });

  it('keeps the order of 100k messages across a memory link', async () => {
    // A small frame limit makes the link split each tick's batch into several frames.
    const a = node({ name: 'a', maxFrameSize: 200_000 });
    const b = node({ name: 'b', maxFrameSize: 200_000 });
    await connectMemory(a, b);
    const sink = b.spawn((self) => orderedSink(self as ActorContext<{ seq: number }>, N));
    const remote = a.ref<{ seq: number }>(sink.node, sink.id);
    const watcher = a.spawn(async (self) => {
      self.monitor(remote);
      for (let i = 0; i < N; i++) {
        remote.send({ seq: i });
        // Several frames and several link flushes, some of them split at the frame limit.
        if (i % 25_000 === 24_999) await new Promise((r) => setTimeout(r, 0));
      }
      return self.receive(isDown);
    });
    const down = await within(a.waitDown(watcher), 'watcher ends', 20_000);
    expect(down.reason).toBe('normal');
    const sinkDown = down.result as {
      reason: unknown;
      result: unknown;
      ref: { equals(x: unknown): boolean };
    };
    expect(a.linkStats()[0].framesOut).toBeGreaterThan((N * 50) / 200_000);
    expect(sinkDown.ref.equals(sink)).toBe(true);
    expect(sinkDown.reason).toBe('normal');
    expect(sinkDown.result).toEqual({ received: N, firstOutOfOrder: -1 });
  });
});

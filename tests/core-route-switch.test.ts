// Regression (found in Chromium: a direct WebRTC link came up mid-stream and later messages
// overtook earlier ones still travelling through the relay). When a route shortens, the node
// holds new envelopes until a marker sent along the old route comes back.
import { describe, it, expect } from 'vitest';
import { createNode, type Connection, type Node } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';

/** A slow wire: each frame arrives `ms` later, in order (setTimeouts of one delay fire in order). */
function slowPair(ms: number): [Connection, Connection] {
  const make = (label: string) => {
    const end: Connection & { other?: Connection; closed: boolean } = {
      label,
      closed: false,
      onframe: null,
      onclose: null,
      send(frame) {
        if (end.closed) return;
        const other = end.other! as typeof end;
        setTimeout(() => !other.closed && other.onframe?.(frame), ms);
      },
      close() {
        if (end.closed) return;
        end.closed = true;
        end.onclose?.('closed');
        const other = end.other! as typeof end;
        setTimeout(() => {
          if (other.closed) return;
          other.closed = true;
          other.onclose?.('closed by peer');
        }, ms);
      },
    };
    return end;
  };
  const x = make('slow:a');
  const y = make('slow:b');
  x.other = y;
  y.other = x;
  return [x, y];
}

async function connectSlow(a: Node, b: Node, ms: number): Promise<void> {
  const [x, y] = slowPair(ms);
  await Promise.all([a.attach(x, true), b.attach(y, false)]);
}

const N = 20_000;

describe('a route that shortens mid-stream keeps the pair in order', () => {
  it('A→relay→B, then a direct A—B link comes up while messages are in flight', async () => {
    const opts = { autoConnect: false };
    const a = createNode({ name: 'a', ...opts });
    const r = createNode({ name: 'r', ...opts });
    const b = createNode({ name: 'b', ...opts });
    // The relayed route is slow (5 ms per hop), so messages are in flight on it when the
    // direct link comes up.
    await connectSlow(a, r, 5);
    await connectSlow(r, b, 5);
    const got: number[] = [];
    let done!: () => void;
    const all = new Promise<void>((res) => (done = res));
    const sink = b.spawn(async (self) => {
      for (;;) {
        got.push((await self.receive()) as number);
        if (got.length === N) done();
      }
    });
    const viaA = a.ref<number>(sink.node, sink.id);
    // Wait until A has a route to B (through r's membership gossip).
    for (let i = 0; i < 100 && !a.isReachable('b'); i++)
      await new Promise((res) => setTimeout(res, 5));
    expect(a.isReachable('b')).toBe(true);
    let linking: Promise<unknown> | undefined;
    for (let i = 1; i <= N; i++) {
      viaA.send(i);
      if (i === N / 4) linking = connectMemory(a, b); // the shorter route appears mid-stream
      if (i % 500 === 0) await new Promise((res) => setImmediate(res));
    }
    await linking;
    await all;
    expect(a.peers().sort()).toEqual(['b', 'r']);
    let inOrder = true;
    for (let i = 0; i < N; i++) if (got[i] !== i + 1) inOrder = false;
    expect(got.length).toBe(N);
    expect(inOrder).toBe(true);
    await Promise.all([a.shutdown(), r.shutdown(), b.shutdown()]);
  });
});

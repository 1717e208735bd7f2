// Issue 14 — streams over memory links: `ref.stream(msg)` reads what a handler answers with an
// async iterable, with credit-based backpressure, early stop, abort, errors and the producer's
// end, and as a web ReadableStream. The same protocol over TCP between processes is in
// flow-stream-tcp.test.ts.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  behaviour,
  serveStream,
  TroupeError,
  type ActorRef,
  type StreamReader,
} from '../core/index.ts';
import { Worker } from 'node:worker_threads';
import { connectMemory } from '../adapters/memory.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { mixedChunk } from './fixtures/stream-chunks.ts';
import { rejects, settle, until, useNodes, within } from './helpers/nodes.ts';

type Req = { n: number; failAt?: number };

/** A behaviour streaming 0..n-1, counting what its generator produced and whether it was closed. */
function counter(stats: { produced: number; closed: boolean }) {
  return behaviour({
    handle: (m: Req, _s: undefined, ctx) => {
      ctx.reply(
        (async function* () {
          try {
            for (let i = 0; i < m.n; i++) {
              if (i === m.failAt) throw new Error(`failed at ${i}`);
              stats.produced++;
              yield i;
            }
          } finally {
            stats.closed = true;
          }
        })(),
      );
    },
  });
}

describe('ref.stream', () => {
  const node = useNodes();

  async function pair() {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    return { a, b };
  }

  it('reads every chunk in order, across a link', async () => {
    const { a, b } = await pair();
    const stats = { produced: 0, closed: false };
    const p = b.spawn(counter(stats));
    const out: number[] = [];
    for await (const x of a.ref<Req>(p.node, p.id).stream<number>({ n: 1000 })) out.push(x);
    expect(out).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    await until(() => a.actorCount === 0 && b.actorCount === 1, 'sink and producer ended');
  });

  it('string chunks (sent as string messages of their own) keep their exact text and their order among other chunks', async () => {
    const { a, b } = await pair();
    const long = 'y'.repeat(70_000);
    const values: unknown[] = [
      'plain',
      '',
      '~c3:looks like a chunk header',
      ':',
      'quote " backslash \\ newline \n tab \t nul \u0000',
      'é ✓ 😀 \ud800 lone surrogate',
      long,
      `${long}"${long}`,
      { v: 'an object' },
      7,
      null,
      ['x', 'y'],
      'last',
    ];
    b.spawn(
      behaviour({
        handle: (_m: null, _s: undefined, ctx) => {
          ctx.reply(
            (async function* () {
              yield* values;
            })(),
          );
        },
      }),
      { name: 'mixed' },
    );
    await until(() => a.whereis('mixed') !== undefined, 'name known');
    const out: unknown[] = [];
    for await (const x of a.stream('mixed', null, { window: 3 })) out.push(x);
    expect(out).toEqual(values);
  });

  it('small chunks the producer has ready go several to a message, in order, also across reads that wait', async () => {
    const { a, b } = await pair();
    b.spawn(
      behaviour({
        handle: (m: { n: number }, _s: undefined, ctx) => {
          ctx.reply(
            (async function* () {
              for (let i = 0; i < m.n; i++) {
                // Now and then a read that is not ready at once (a macrotask away).
                if (i % 100 === 99) await new Promise((r) => setTimeout(r, 0));
                yield i % 3 === 0 ? `s${i}` : i;
              }
            })(),
          );
        },
      }),
      { name: 'small' },
    );
    await until(() => a.whereis('small') !== undefined, 'name known');
    const envelopes = () => b.linkStats().reduce((n, l) => n + l.envelopesOut, 0);
    const before = envelopes();
    const out: unknown[] = [];
    for await (const x of a.stream('small', { n: 2000 }, { window: 64 })) out.push(x);
    expect(out).toEqual(Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? `s${i}` : i)));
    // One message per chunk would be 2000 (plus the reply and the end).
    expect(envelopes() - before).toBeLessThan(400);
  });

  it('from a worker_threads node: long strings, objects and batched small chunks, in order', async () => {
    const a = node({ name: 'main' });
    const worker = new Worker(new URL('./fixtures/tsx-worker.mjs', import.meta.url), {
      workerData: {
        entry: new URL('./fixtures/stream-worker.ts', import.meta.url).href,
        name: 'w1',
      },
    });
    try {
      await within(spawnWorkerNode(a, worker), 'the worker links up', 20_000);
      await until(() => a.whereis('mixed') !== undefined, 'the worker registers mixed', 10_000);
      const out: unknown[] = [];
      for await (const x of a.stream('mixed', { n: 500 }, { window: 32 })) out.push(x);
      expect(out.length).toBe(500);
      expect(out).toEqual(Array.from({ length: 500 }, (_, i) => mixedChunk(i)));
    } finally {
      await worker.terminate();
    }
  });

  it('a slow consumer pauses the producer: it never runs more than one window ahead', async () => {
    const { a, b } = await pair();
    const stats = { produced: 0, closed: false };
    const p = b.spawn(counter(stats));
    const window = 8;
    const reader = a.ref<Req>(p.node, p.id).stream<number>({ n: 10_000 }, { window });
    let taken = 0;
    let maxAhead = 0;
    for await (const x of reader) {
      expect(x).toBe(taken);
      taken++;
      if (taken % 50 === 0) await settle(3); // a slow consumer
      maxAhead = Math.max(maxAhead, stats.produced - taken);
      if (taken === 400) break;
    }
    expect(maxAhead).toBeLessThanOrEqual(window + 1);
    await until(() => stats.closed, 'the producer closed its iterator after the consumer stopped');
    expect(stats.produced).toBeLessThanOrEqual(400 + window + 1);
    await until(() => b.actorCount === 1 && a.actorCount === 0, 'producer and sink ended');
  });

  it('the byte window bounds what is ahead: deep for small chunks, shallow for large ones, one at a time past it, objects a sixteenth each', async () => {
    const { a, b } = await pair();
    let produced = 0;
    b.spawn(
      behaviour({
        handle: (m: { n: number; size: number; obj?: boolean }, _s: undefined, ctx) => {
          ctx.reply(
            (async function* () {
              const filler = 'x'.repeat(m.size);
              for (let i = 0; i < m.n; i++) {
                produced++;
                yield m.obj ? { filler } : filler;
              }
            })(),
          );
        },
      }),
      { name: 'sized' },
    );
    await until(() => a.whereis('sized') !== undefined, 'name known');
    /** Most chunks the producer ran ahead of a consumer that pauses every 50 chunks. */
    async function ahead(req: { n: number; size: number; obj?: boolean }, options: object) {
      produced = 0;
      let taken = 0;
      let most = 0;
      for await (const x of a.stream('sized', req, options)) {
        expect(typeof x === 'string' ? x.length : (x as { filler: string }).filler.length).toBe(
          req.size,
        );
        taken++;
        if (taken % 50 === 0) await new Promise((r) => setTimeout(r, 30));
        most = Math.max(most, produced - taken);
      }
      expect(taken).toBe(req.n);
      return most;
    }
    // Defaults (256 chunks, 2 MiB): 64 KB chunks stop at 2 MiB (32 of them), plus the one made.
    const big = await ahead({ n: 300, size: 65_536 }, {});
    expect(big).toBeLessThanOrEqual(33);
    expect(big).toBeGreaterThan(16);
    // 100-byte chunks: the chunk window (256) is the bound, far deeper than 16.
    const small = await ahead({ n: 600, size: 100 }, {});
    expect(small).toBeLessThanOrEqual(257);
    expect(small).toBeGreaterThan(32);
    // Chunks larger than the byte window still flow, one at a time.
    expect(await ahead({ n: 20, size: 300_000 }, { windowBytes: 100_000 })).toBeLessThanOrEqual(2);
    // Objects count a sixteenth of the byte window each: about 16 ahead, whatever `window` says.
    expect(await ahead({ n: 300, size: 1000, obj: true }, { window: 1000 })).toBeLessThanOrEqual(
      17,
    );
  });

  it('the producer throws: the iteration throws its error after the chunks before it', async () => {
    const { a, b } = await pair();
    const p = b.spawn(counter({ produced: 0, closed: false }));
    const out: number[] = [];
    const err = await (async () => {
      try {
        for await (const x of a.ref<Req>(p.node, p.id).stream<number>({ n: 10, failAt: 5 }))
          out.push(x);
      } catch (e) {
        return e;
      }
    })();
    expect(out).toEqual([0, 1, 2, 3, 4]);
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).message).toContain('failed at 5');
  });

  it('abort stops the stream: ABORTED, and the producer is closed', async () => {
    const { a, b } = await pair();
    const stats = { produced: 0, closed: false };
    const p = b.spawn(counter(stats));
    const ac = new AbortController();
    const reader = a
      .ref<Req>(p.node, p.id)
      .stream<number>({ n: 1e9 }, { signal: ac.signal, window: 4 });
    expect((await reader.next()).value).toBe(0);
    const hang = (async () => {
      for (;;) {
        const r = await reader.next();
        if (r.done) return;
        if (r.value === 20) ac.abort('enough');
      }
    })();
    await rejects(hang, 'ABORTED', 'the aborted iteration');
    await until(() => stats.closed, 'the producer stopped');
    expect(stats.produced).toBeLessThan(30);
  });

  it('the producer actor is killed: the iteration throws ACTOR_EXITED', async () => {
    const { a, b } = await pair();
    const src = b.spawn(
      behaviour({
        handle: (_m: unknown, _s: undefined, ctx) => {
          ctx.reply(
            (async function* () {
              yield 1;
              await new Promise(() => {}); // then hangs
            })(),
          );
        },
      }),
    );
    const reader = a.ref(src.node, src.id).stream<number>('go');
    expect((await reader.next()).value).toBe(1);
    const next = reader.next();
    await settle();
    // The producer is the newest actor on b.
    const producers = [...Array(3).keys()]
      .map((i) => b.ref(b.id, src.id + 1 + i))
      .filter((r) => b.isAlive(r));
    expect(producers.length).toBe(1);
    b.kill(producers[0]);
    await rejects(next, 'ACTOR_EXITED');
  });

  it('a call that does not answer with an iterable: INVALID_MESSAGE', async () => {
    const { a, b } = await pair();
    const echo = b.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    await rejects(a.ref(echo.node, echo.id).stream('x').next(), 'INVALID_MESSAGE');
    await until(() => a.actorCount === 0, 'the sink ended');
  });

  it('as a web ReadableStream, and by registered name with serveStream', async () => {
    const { a, b } = await pair();
    b.spawn(
      behaviour({
        handle: (m: { upTo: number }, _s: undefined, ctx) => {
          ctx.reply(
            serveStream(
              ctx.node,
              (async function* () {
                for (let i = 1; i <= m.upTo; i++) yield `line ${i}`;
              })(),
            ),
          );
        },
      }),
      { name: 'lines' },
    );
    await until(() => a.whereis('lines') !== undefined, 'the name reached a');
    const rs = a.stream<string>('lines', { upTo: 3 }).readable();
    const got: string[] = [];
    const reader = rs.getReader();
    for (;;) {
      const r = await within(reader.read(), 'a read');
      if (r.done) break;
      got.push(r.value);
    }
    expect(got).toEqual(['line 1', 'line 2', 'line 3']);
  });

  it('the consumer node shuts down: the producer stops', async () => {
    const { a, b } = await pair();
    const stats = { produced: 0, closed: false };
    const p: ActorRef<Req> = b.spawn(counter(stats));
    const reader = a.ref<Req>(p.node, p.id).stream<number>({ n: 1e9 }, { window: 4 });
    await reader.next();
    await a.shutdown();
    await until(() => stats.closed, 'the producer closed its iterator');
  });

  it('through a relay (a — r — b, no direct link): chunks in order, early stop reaches the producer, an aborted call reaches the callee', async () => {
    const opts = { autoConnect: false };
    const a = node({ name: 'a', ...opts });
    const r = node({ name: 'r', ...opts });
    const b = node({ name: 'b', ...opts });
    await connectMemory(a, r);
    await connectMemory(r, b);
    const stats = { produced: 0, closed: false };
    b.spawn(counter(stats), { name: 'count' });
    await until(() => a.whereis('count') !== undefined, 'the name reached a through r');
    expect(a.peers()).toEqual(['r']);
    const out: number[] = [];
    for await (const x of a.stream<number>('count', { n: 200 }, { window: 4 })) out.push(x);
    expect(out).toEqual(Array.from({ length: 200 }, (_, i) => i));
    stats.produced = 0;
    stats.closed = false;
    let n = 0;
    for await (const _ of a.stream<number>('count', { n: 1e9 }, { window: 4 }))
      if (++n === 10) break;
    await until(() => stats.closed, 'the producer behind the relay stopped');
    expect(stats.produced).toBeLessThanOrEqual(10 + 4 + 1);
    // A cancelled call crosses the relay too (a routed `ca`).
    let aborted = 0;
    b.spawn(
      behaviour({
        handle: (_m: unknown, _s: undefined, ctx) => {
          ctx.signal!.addEventListener('abort', () => aborted++);
          ctx.deferReply();
        },
      }),
      { name: 'slow' },
    );
    await until(() => a.whereis('slow') !== undefined, 'slow reached a');
    const ac = new AbortController();
    const call = a.call('slow', 1, { signal: ac.signal, timeout: 60_000 });
    await settle(10);
    ac.abort();
    await rejects(call, 'ABORTED');
    await until(() => aborted === 1, 'the callee behind the relay saw the abort');
  });

  it('types: the chunk type comes from the reply type of the ref', () => {
    const typed = (r: ActorRef<{ n: number }, AsyncIterable<number>>) => r.stream({ n: 1 });
    const untyped = (r: ActorRef<string>) => r.stream('x');
    const chosen = (r: ActorRef<string>) => r.stream<Uint8Array>('x');
    expectTypeOf<ReturnType<typeof typed>>().toEqualTypeOf<StreamReader<number>>();
    expectTypeOf<ReturnType<typeof untyped>>().toEqualTypeOf<StreamReader<unknown>>();
    expectTypeOf<ReturnType<typeof chosen>>().toEqualTypeOf<StreamReader<Uint8Array>>();
  });
});

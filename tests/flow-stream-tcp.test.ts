// Issue 14 — streams and cancellation between two processes over TCP (127.0.0.1): the producer
// is tests/fixtures/flow-producer.ts in a child process, the consumer this test's node.
// - 1 GB in 64 KB chunks (16,384) to a slow consumer: in order, nothing lost, memory bounded on
//   both sides
//   (the credit window, 16 chunks = 1 MB, is all that is ever in flight or waiting);
// - the consumer stops early: the producer stops within one credit window;
// - the producer's process is SIGKILLed: the iteration throws NODE_DOWN;
// - an aborted remote call rejects ABORTED and the callee sees its signal abort.
import { describe, expect, it } from 'vitest';
import { behaviour, TroupeError, type Node } from '../core/index.ts';
import { eventually, useCluster, within, type ChildNode } from './helpers/cluster.ts';

const SECRET = 'flow-secret';
type Stats = { produced: number; closed: number; handled: number; aborted: number; rss: number };
const MB = 1024 * 1024;

describe('streams over TCP between processes', () => {
  const cluster = useCluster();

  async function setup(): Promise<{ node: Node; child: ChildNode; stats: () => Promise<Stats> }> {
    const child = await cluster.script('producer', 'tests/fixtures/flow-producer.ts', [SECRET]);
    const node = await cluster.node({ secret: SECRET, listen: false });
    await node.connect(child.address);
    await eventually(
      () => node.whereis('stats') && node.whereis('bytes') && node.whereis('slowjob'),
      "the producer's names",
    );
    return { node, child, stats: () => node.call<Stats>('stats', null) };
  }

  it('1 GB in 64 KB chunks to a slow consumer: in order, nothing lost, RSS bounded on both sides', async () => {
    const { node, stats } = await setup();
    const chunk = 64 * 1024;
    const total = 1024 * MB;
    const count = total / chunk;
    const rss0 = process.memoryUsage().rss;
    const child0 = (await stats()).rss;
    let peak = 0;
    let childPeak = 0;
    let expected = 0;
    const t0 = performance.now();
    for await (const c of node.stream<string>('bytes', { count, size: chunk }, { window: 16 })) {
      if (c.length !== chunk || Number(c.slice(0, 10)) !== expected)
        throw new Error(`chunk ${expected} is wrong: length ${c.length}, starts ${c.slice(0, 10)}`);
      expected++;
      // A slow consumer: a pause every 256 chunks (16 MB, 64 pauses); the producer must wait meanwhile.
      if (expected % 256 === 0) {
        await new Promise((r) => setTimeout(r, 30));
        peak = Math.max(peak, process.memoryUsage().rss - rss0);
        const s = await stats();
        childPeak = Math.max(childPeak, s.rss - child0);
        // Never more than one window (16) ahead of what was consumed, plus the one being made.
        expect(s.produced - expected).toBeLessThanOrEqual(17);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    expect(expected).toBe(count);
    // 1 GB held anywhere would show as ≥ 1 GB of RSS, a leak of a few KB per chunk as tens of MB
    // beyond the bound; the window is 1 MB.
    expect(peak, `consumer RSS growth ${(peak / MB).toFixed(0)} MB`).toBeLessThan(160 * MB);
    expect(childPeak, `producer RSS growth ${(childPeak / MB).toFixed(0)} MB`).toBeLessThan(
      160 * MB,
    );
    console.log(
      `[flow/stream tcp] ${total / MB} MB in ${count} chunks of 64 KB in ${secs.toFixed(1)} s (${(total / MB / secs).toFixed(0)} MB/s); RSS growth: consumer ${(peak / MB).toFixed(0)} MB, producer ${(childPeak / MB).toFixed(0)} MB`,
    );
  }, 180_000);

  it('the consumer stops early: the producer stops within one credit window', async () => {
    const { node, stats } = await setup();
    let n = 0;
    for await (const _ of node.stream<string>('bytes', { count: 0, size: 1024 }, { window: 16 })) {
      if (++n === 100) break;
    }
    const s = await eventually(async () => {
      const x = await stats();
      return x.closed === 1 && x;
    }, 'the producer closed its generator');
    expect(s.produced).toBeGreaterThanOrEqual(100);
    expect(s.produced).toBeLessThanOrEqual(100 + 16 + 1);
  }, 60_000);

  it("the producer's process is SIGKILLed: the iteration throws NODE_DOWN", async () => {
    const { node, child } = await setup();
    const reader = node.stream<string>('bytes', { count: 0, size: 1024 }, { window: 4 });
    for (let i = 0; i < 10; i++) expect((await reader.next()).done).toBe(false);
    await child.kill('SIGKILL');
    const err = await within(
      (async () => {
        try {
          for (;;) if ((await reader.next()).done) return 'ended';
        } catch (e) {
          return e;
        }
      })(),
      'the iteration to fail',
      15_000,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('NODE_DOWN');
  }, 60_000);

  it('an aborted remote call: ABORTED at once, and the callee observes the abort', async () => {
    const { node, stats } = await setup();
    const ac = new AbortController();
    const call = node.call('slowjob', 'work', { signal: ac.signal, timeout: 60_000 });
    await eventually(async () => (await stats()).handled === 1, 'the callee took the call');
    const t0 = performance.now();
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    expect(performance.now() - t0).toBeLessThan(1000);
    await eventually(async () => (await stats()).aborted === 1, 'the callee saw its signal abort');
  }, 60_000);

  it("the caller's process is SIGKILLed: the callee's ctx.signal aborts (its node was lost)", async () => {
    // Here the child is the caller: it calls our `slow` actor and is killed while the call is open.
    const { node, child } = await setup();
    let reason: unknown;
    let handled = 0;
    node.spawn(
      behaviour({
        handle: (_m: unknown, _s: undefined, ctx) => {
          handled++;
          const signal = ctx.signal!;
          signal.addEventListener('abort', () => (reason = signal.reason));
          ctx.deferReply();
        },
      }),
      { name: 'slow-here' },
    );
    await eventually(
      async () => (await node.call<boolean>('stats', { callBack: 'slow-here' })) && handled === 1,
      'the child called slow-here',
    );
    await child.kill('SIGKILL');
    await eventually(() => reason !== undefined, "the handler's signal aborted", 15_000);
    expect((reason as TroupeError).code).toBe('NODE_DOWN');
  }, 60_000);
});

// parallelMap over Web Workers in a real Chromium (playwright-core): `createWebWorkerPool`
// (troupe/patterns/browser) starts Web Workers that each run a troupe node with a function server
// (`servePoolWorker`); the page maps a CPU-bound function (naive fib) over them. Results equal a
// plain map; chunkSize is honoured; a worker killed mid-map (by the pool, or its Worker terminated
// by the app) has its chunk retried, or the map fails with WORKER_LOST; a throwing function gives
// JOB_FAILED; 1 worker against N is timed and the speedup printed (not asserted). No WebRTC, so
// no network namespace: the only socket is the static server on 127.0.0.1.
import { describe, expect, it } from 'vitest';
import { useFixturePage } from './harness/fixture-page.ts';
import type { Pmx } from './pmap-fixtures/page.ts';

declare const pmx: Pmx;

describe('parallelMap on Web Workers in Chromium', () => {
  const fx = useFixturePage('pmap', 'pmx');

  it('matches a plain map with plain and named functions; chunkSize is honoured; a throwing function fails the map with JOB_FAILED', async () => {
    const r = await fx.page.evaluate(() => pmx.basics(3));
    expect(r.ids).toHaveLength(3);
    expect(r.plain).toEqual(r.expected);
    expect(r.named).toEqual(r.expected);
    expect(r.chunked).toEqual(r.expected);
    expect(r.chunks.map((c) => c.size).sort((a, b) => b - a)).toEqual([5, 5, 5, 5, 4]);
    expect(new Set(r.chunks.map((c) => c.worker)).size).toBeGreaterThan(1);
    // onChunk: one call per chunk, with the chunk's first index and its results.
    const starts = [];
    for (let i = 0; i < r.starts.length; i += 2) starts.push([r.starts[i], r.starts[i + 1]]);
    expect(starts.sort((a, b) => a[0] - b[0])).toEqual([
      [0, 5],
      [5, 5],
      [10, 5],
      [15, 5],
      [20, 4],
    ]);
    expect(r.empty).toEqual([]);
    expect(r.thrown?.code).toBe('JOB_FAILED');
    expect(r.thrown?.message).toContain('three');
    expect(r.thrownNamed?.code).toBe('JOB_FAILED');
    expect(r.thrownNamed?.message).toContain('three is not allowed');
    expect(r.unknownFn?.code).toBe('NO_WORKER');
    expect(fx.errors).toEqual([]);
  }, 60_000);

  for (const how of ['pool', 'worker'] as const) {
    const who = how === 'pool' ? 'pool.terminate(id)' : 'the app calling worker.terminate()';
    it(`a worker killed mid-map by ${who}: its chunk is retried and the result still matches`, async () => {
      const r = await fx.page.evaluate(([h]) => pmx.killMidMap(3, h, 'retry'), [how] as const);
      expect(r.error).toBeUndefined();
      expect(r.value).toEqual(r.expected);
      expect(r.killed).toHaveLength(1);
      expect(r.ids).toHaveLength(2);
      expect(r.ids).not.toContain(r.killed[0]);
      expect(r.peers).toEqual([...r.ids].sort());
      expect(r.after).toEqual([2, 4, 6]);
      expect(fx.errors).toEqual([]);
    }, 60_000);
  }

  it("a worker killed mid-map with onFailure: 'fail': the map rejects with WORKER_LOST", async () => {
    const r = await fx.page.evaluate(() => pmx.killMidMap(2, 'worker', 'fail'));
    expect(r.value).toBeUndefined();
    expect(r.error?.code).toBe('WORKER_LOST');
    expect(r.error?.message).toContain(r.killed[0]);
    expect(r.killed).toHaveLength(1);
    expect(r.ids).toEqual(r.peers);
    expect(r.ids).toHaveLength(1);
    expect(fx.errors).toEqual([]);
  }, 60_000);

  it('a pool grows and shrinks; linked to the page node, it leaves that node running when closed', async () => {
    const r = await fx.page.evaluate(() => pmx.resizeAndOwnNode());
    expect(r.sizes).toEqual([1, 3, 1]);
    expect(r.out).toEqual(r.expected);
    expect(r.used).toEqual([...r.idsAt3].sort());
    expect(r.peersAt3).toEqual([...r.idsAt3].sort());
    expect(r.kept).toEqual([r.idsAt3[0]]);
    expect(r.peersAfter).toEqual([]);
    expect(r.stillUp).toBe('ping');
    expect(fx.errors).toEqual([]);
  }, 60_000);

  it('a worker that never links: the pool gives up with TIMEOUT and terminates it', async () => {
    const r = await fx.page.evaluate(() => pmx.startTimeout());
    expect(r.error?.code).toBe('TIMEOUT');
    expect(r.terminated).toBeGreaterThanOrEqual(1);
    expect(fx.errors).toEqual([]);
  }, 60_000);

  it('is faster on N workers than on one on a CPU-bound job (speedup printed, not asserted)', async () => {
    const r = await fx.page.evaluate(() => pmx.timing([2, 4], 32, 24, 3));
    for (const run of r.runs) expect(run.ok).toBe(true);
    const best = (x: { ms: number[] }) => Math.min(...x.ms);
    const base = best(r.runs[0]);
    const line = r.runs
      .map(
        (x) =>
          `${x.workers} worker${x.workers > 1 ? 's' : ''} ${best(x).toFixed(0)} ms (${(base / best(x)).toFixed(2)}x)`,
      )
      .join(', ');
    console.log(
      `parallelMap Web Workers, 24 x fib(32), Chromium, ${r.cores} cores, best of 3: ${line}`,
    );
    expect(fx.errors).toEqual([]);
  }, 120_000);
});

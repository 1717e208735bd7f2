// parallelMap on worker_threads (patterns/parallel-map.ts, createThreadPool in patterns/node.ts):
// each thread is a troupe node linked to this one over its MessagePort.
import { afterEach, describe, expect, it } from 'vitest';
import { TroupeError } from '../core/index.ts';
import { parallelMap, type MapPool } from '../patterns/index.ts';
import { createThreadPool, type ThreadPool } from '../patterns/node.ts';
import { slowFib } from '../demo-node/dist-functions.ts';
import { within } from './dist-fixtures.ts';

const FUNCTIONS = new URL('../demo-node/dist-functions.ts', import.meta.url);

/** A pool that terminates the thread running the `nth` chunk shortly after handing it over. */
function killingNth(
  pool: ThreadPool,
  nth: number,
  afterMs: number,
): MapPool & { killed: string[] } {
  let calls = 0;
  const killed: string[] = [];
  return {
    killed,
    workers: () => pool.workers(),
    runChunk(id, fn, items, timeout) {
      if (++calls === nth) {
        setTimeout(() => {
          killed.push(id);
          pool.terminate(id);
        }, afterMs);
      }
      return pool.runChunk(id, fn, items, timeout);
    },
  };
}

/** Busy for `ms` (a chunk that is surely still running when its thread is killed), then 2n. */
const busyDouble = (n: number) => {
  const end = Date.now() + 150;
  while (Date.now() < end);
  return n * 2;
};

describe('parallelMap on worker threads', () => {
  const pools: ThreadPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });
  const pool = async (size: number) => {
    const p = await createThreadPool({ size, functions: FUNCTIONS });
    pools.push(p);
    return p;
  };

  it('matches a plain map, with plain and named functions, in order', async () => {
    const p = await pool(2);
    expect(p.threadIds()).toHaveLength(2);
    const items = Array.from({ length: 500 }, (_, i) => i - 250);
    const f = (n: number) => n * n + 1;
    expect(await parallelMap(f, items, { workers: p })).toEqual(items.map(f));
    expect(await parallelMap(f, items, { workers: p, chunkSize: 7 })).toEqual(items.map(f));
    // A self-recursive named function, and one the threads serve by name from a module.
    const fibItems = Array.from({ length: 30 }, (_, i) => i);
    expect(
      await parallelMap(
        function fib(n: number): number {
          return n < 2 ? n : fib(n - 1) + fib(n - 2);
        },
        fibItems,
        { workers: p, chunkSize: 3 },
      ),
    ).toEqual(fibItems.map(slowFib));
    expect(await parallelMap('cpuFib', fibItems, { workers: p })).toEqual(fibItems.map(slowFib));
    expect(await parallelMap(f, [], { workers: p })).toEqual([]);
    // A function that throws fails the map (not retried: it would throw again).
    const err = await parallelMap(
      (n: number) => {
        if (n === 3) throw new Error('three');
        return n;
      },
      [1, 2, 3, 4],
      { workers: p, chunkSize: 1 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('JOB_FAILED');
    expect((err as TroupeError).message).toContain('three');
  }, 60_000);

  it('a thread that dies with a chunk: retried on another thread, or the map fails, as configured', async () => {
    const items = Array.from({ length: 8 }, (_, i) => i);
    const p1 = await pool(3);
    const retrying = killingNth(p1, 2, 40);
    expect(
      await within(
        parallelMap(busyDouble, items, { workers: retrying, chunkSize: 1, onFailure: 'retry' }),
        'the retried map',
        20_000,
      ),
    ).toEqual(items.map((n) => n * 2));
    expect(retrying.killed).toHaveLength(1);
    expect(p1.threadIds()).not.toContain(retrying.killed[0]);

    const p2 = await pool(2);
    const failing = killingNth(p2, 2, 40);
    const err = await within(
      parallelMap(busyDouble, items, { workers: failing, chunkSize: 1, onFailure: 'fail' }).catch(
        (e: unknown) => e,
      ),
      'the failed map',
      20_000,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('WORKER_LOST');
    expect(failing.killed).toHaveLength(1);
  }, 60_000);

  it('is faster with two threads than with one on a CPU-bound job (speedup reported, not asserted)', async () => {
    const one = await pool(1);
    const two = await pool(2);
    const items = Array.from({ length: 32 }, () => 30);
    const expected = items.map(slowFib);
    // Warm every thread (JIT), then time each pool.
    await parallelMap('cpuFib', items.slice(0, 4), { workers: one, chunkSize: 1 });
    await parallelMap('cpuFib', items.slice(0, 4), { workers: two, chunkSize: 1 });
    let t = performance.now();
    expect(await parallelMap('cpuFib', items, { workers: one, chunkSize: 2 })).toEqual(expected);
    const t1 = performance.now() - t;
    t = performance.now();
    expect(await parallelMap('cpuFib', items, { workers: two, chunkSize: 2 })).toEqual(expected);
    const t2 = performance.now() - t;
    console.log(
      `parallelMap threads, 32 x fib(30): 1 thread ${t1.toFixed(0)} ms, 2 threads ${t2.toFixed(0)} ms, speedup ${(t1 / t2).toFixed(2)}x`,
    );
  }, 60_000);
});

// parallelMap on remote nodes (nodePool in patterns/parallel-map.ts): real worker processes
// (demo-node/dist-worker.ts) found by multicast on 127.0.0.1, one killed mid-map.
import { describe, expect, it } from 'vitest';
import { TroupeError } from '../core/index.ts';
import { nodePool, parallelMap, type MapPool } from '../patterns/index.ts';
import { slowFib } from '../demo-node/dist-functions.ts';
import { freshGroup, groupArgs, useDist, eventually, within } from './dist-fixtures.ts';

const SECRET = 'pmap-remote-secret';

describe('parallelMap on remote nodes', () => {
  const dist = useDist();

  it('matches a plain map; a worker killed mid-map has its chunk retried; faster on two nodes than one', async () => {
    const g = freshGroup();
    const procs = await Promise.all(
      ['pm-1', 'pm-2'].map((n) =>
        dist.start(n, 'dist-worker.ts', ['--name', n, ...groupArgs(g, SECRET)]),
      ),
    );
    const { node } = await dist.node('pm-boss', g, SECRET);
    const pool = nodePool(node);
    await eventually(() => pool.workers().length === 2, 'both workers in the pool', 15_000);

    const items = Array.from({ length: 40 }, (_, i) => i % 25);
    expect(await parallelMap('cpuFib', items, { workers: pool })).toEqual(items.map(slowFib));
    expect(
      await parallelMap('cpuFib', items, { workers: pool, chunkSize: 1, perWorker: 3 }),
    ).toEqual(items.map(slowFib));

    // Remote nodes do not run code sent as source: a clear error, not a retry.
    const err = await parallelMap((n: number) => n, [1, 2], { workers: pool }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('UNKNOWN_BEHAVIOUR');

    // Speedup over one worker on a CPU-bound job (reported, not asserted).
    const one = nodePool(node, { nodes: ['pm-1'] });
    const heavy = Array.from({ length: 32 }, () => 30);
    const expected = heavy.map(slowFib);
    await parallelMap('cpuFib', heavy.slice(0, 4), { workers: pool, chunkSize: 1 }); // warm both
    let t = performance.now();
    expect(await parallelMap('cpuFib', heavy, { workers: one, chunkSize: 2 })).toEqual(expected);
    const t1 = performance.now() - t;
    t = performance.now();
    expect(await parallelMap('cpuFib', heavy, { workers: pool, chunkSize: 2 })).toEqual(expected);
    const t2 = performance.now() - t;
    console.log(
      `parallelMap remote nodes, 32 x fib(30): 1 node ${t1.toFixed(0)} ms, 2 nodes ${t2.toFixed(0)} ms, speedup ${(t1 / t2).toFixed(2)}x`,
    );

    // SIGKILL the worker that got the third chunk while it runs it: the chunk runs on the other.
    let calls = 0;
    let killed = '';
    const killing: MapPool = {
      workers: () => pool.workers(),
      runChunk(id, fn, chunk, timeout) {
        if (++calls === 3) {
          killed = id;
          void procs.find((p) => p.id === id)!.kill('SIGKILL');
        }
        return pool.runChunk(id, fn, chunk, timeout);
      },
    };
    const slow = Array.from({ length: 12 }, () => 31);
    expect(
      await within(
        parallelMap('cpuFib', slow, { workers: killing, chunkSize: 1, onFailure: 'retry' }),
        'the map with a killed worker',
        30_000,
      ),
    ).toEqual(slow.map(slowFib));
    expect(killed).not.toBe('');
    expect(pool.workers()).not.toContain(killed);
  }, 90_000);
});

// Issue 14 — an aborted parallelMap stops every worker's running job: each thread's job sees its
// own signal (`job.signal`) abort and returns, so the threads are free again at once.
import { afterEach, describe, expect, it } from 'vitest';
import { TroupeError, type ActorRef } from '../core/index.ts';
import {
  FUNCTION_SERVER_BEHAVIOUR,
  parallelMap,
  type FunctionRequest,
  type ServerInfo,
} from '../patterns/index.ts';
import { createThreadPool, type ThreadPool } from '../patterns/node.ts';

/** Runs until its job is cancelled (or 30 s pass: a job that never sees the abort keeps its thread busy). */
const spin = async (n: number, job: { signal: AbortSignal }) => {
  const end = Date.now() + 30_000;
  while (!job.signal.aborted && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return n;
};

describe('parallelMap({ signal })', () => {
  const pools: ThreadPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it("abort: rejects ABORTED and every thread's running job stops", async () => {
    const pool = await createThreadPool({ size: 2 });
    pools.push(pool);
    // A second function server on each thread shares the thread's job table: it reports what runs there.
    const probes = await Promise.all(
      pool.threadIds().map((id) => pool.node.spawn<FunctionRequest>(id, FUNCTION_SERVER_BEHAVIOUR)),
    );
    let counts: number[] = [];
    const running = async (): Promise<number[]> =>
      (counts = (
        await Promise.all(
          probes.map((p: ActorRef<FunctionRequest>) =>
            pool.node.call<ServerInfo>(p, { op: 'describe' }),
          ),
        )
      ).map((i) => i.running));
    const ac = new AbortController();
    const map = parallelMap(spin, [1, 2, 3, 4], { workers: pool, chunkSize: 1, signal: ac.signal });
    const outcome = map.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const started = Date.now();
    while ((await running()).join() !== '1,1') {
      if (Date.now() - started > 15_000)
        throw new Error(`jobs did not start on both threads: ${counts}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    ac.abort('stop');
    const err = await outcome;
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('ABORTED');
    const t0 = Date.now();
    while ((await running()).join() !== '0,0') {
      if (Date.now() - t0 > 5_000)
        throw new Error(`jobs still running 5 s after the abort: ${counts}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The threads are free: a new map runs at once.
    expect(await parallelMap((n: number) => n + 1, [1, 2, 3], { workers: pool })).toEqual([
      2, 3, 4,
    ]);
  }, 60_000);

  it('an already aborted signal rejects at once; the map never starts', async () => {
    const pool = await createThreadPool({ size: 1 });
    pools.push(pool);
    await expect(
      parallelMap((n: number) => n, [1], { workers: pool, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
  }, 30_000);
});

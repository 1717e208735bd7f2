// Job distribution (patterns/distributor.ts): a distributor in this process, real worker
// processes (demo-node/dist-worker.ts) found by multicast on 127.0.0.1, killed with SIGKILL.
import { afterEach, describe, expect, it } from 'vitest';
import { TroupeError } from '../core/index.ts';
import {
  createDistributor,
  distributorClient,
  workerFunction,
  type Distributor,
} from '../patterns/index.ts';
import { fibOf } from '../demo-node/dist-functions.ts';
import { freshGroup, groupArgs, useDist, eventually, within, type Group } from './dist-fixtures.ts';

const SECRET = 'distributor-secret';
type Stamped = { value: number; by: string };

describe('job distribution', () => {
  const dist = useDist();
  const distributors: Distributor[] = [];
  afterEach(() => {
    for (const d of distributors.splice(0)) d.stop();
  });
  const worker = (name: string, g: Group) =>
    dist.start(name, 'dist-worker.ts', ['--name', name, ...groupArgs(g, SECRET)]);
  const distributor = async (g: Group) => {
    const { node } = await dist.node('dd-dist', g, SECRET);
    const d = createDistributor(node, { scanInterval: 200 });
    distributors.push(d);
    return d;
  };

  it('fib runs remotely; with its only worker SIGKILLed it falls back locally; back to remote on restart; from any node', async () => {
    const g = freshGroup();
    const w1 = await worker('dd-w1', g);
    const d = await distributor(g);
    const fallbacks: string[] = [];
    const fib = workerFunction(
      d,
      'fib',
      (n: number): Stamped => ({ value: fibOf(n), by: 'local' }),
      { timeout: 3000, onFallback: (e) => fallbacks.push(e.code) },
    );
    await d.waitForWorkers(1, 15_000);

    expect(await fib(20)).toEqual({ value: 6765, by: 'dd-w1' });
    expect(await fib(40)).toEqual({ value: 102334155, by: 'dd-w1' });

    // Another node calls through the distributor by name.
    const { node: caller } = await dist.node('dd-caller', g, SECRET);
    await eventually(
      () => caller.whereis('distributor'),
      'the distributor name replicated to the caller',
    );
    const client = distributorClient(caller);
    const remoteFib = workerFunction(
      client,
      'fib',
      (n: number): Stamped => ({ value: fibOf(n), by: 'caller-local' }),
      { timeout: 3000 },
    );
    expect(await remoteFib(30)).toEqual({ value: 832040, by: 'dd-w1' });

    // SIGKILL the only worker; the very next call returns the local result: no error, no hang.
    await w1.kill('SIGKILL');
    expect(await within(fib(21), 'the call after the kill', 5000)).toEqual({
      value: 10946,
      by: 'local',
    });
    expect(await within(fib(22), 'the next one', 5000)).toEqual({ value: 17711, by: 'local' });
    expect(await within(remoteFib(23), 'through the client', 5000)).toEqual({
      value: 28657,
      by: 'caller-local',
    });
    expect(fallbacks.every((c) => c === 'NO_WORKER' || c === 'WORKER_LOST')).toBe(true);

    // A function no worker has runs locally too; a job that throws is an error, not a fallback.
    const missing = workerFunction(d, 'noSuchFunction', (x: number) => x + 1);
    expect(await missing(1)).toBe(2);

    // Restart it (same name): calls go remote again.
    const w1again = await worker('dd-w1', g);
    await eventually(
      async () => (await fib(24)).by === 'dd-w1',
      'calls remote again after the restart',
      15_000,
    );
    expect(await remoteFib(25)).toEqual({ value: 75025, by: 'dd-w1' });
    const broken = workerFunction(d, 'broken', () => 'local');
    await expect(broken(null)).rejects.toMatchObject({ code: 'JOB_FAILED' });
    expect(fib.stats.remote).toBeGreaterThanOrEqual(3);
    expect(fib.stats.local).toBeGreaterThanOrEqual(2);

    // The distributor gone: the client's calls run locally (no error, no hang).
    d.stop();
    await eventually(() => !caller.whereis('distributor'), 'the distributor name gone');
    expect(await within(remoteFib(26), 'the call without a distributor', 5000)).toEqual({
      value: 121393,
      by: 'caller-local',
    });
    void w1again;
  }, 60_000);

  it('spreads 1,000 calls over three workers, all correct', async () => {
    const g = freshGroup();
    await Promise.all(['dd-a', 'dd-b', 'dd-c'].map((n) => worker(n, g)));
    const d = await distributor(g);
    await d.waitForWorkers(3, 20_000);
    const ns = Array.from({ length: 1000 }, (_, i) => i % 79);
    const results = await within(
      Promise.all(ns.map((n) => d.run<Stamped>('fib', n))),
      '1,000 calls',
      30_000,
    );
    expect(results.map((r) => r.value)).toEqual(ns.map(fibOf));
    const per: Record<string, number> = {};
    for (const r of results) per[r.by] = (per[r.by] ?? 0) + 1;
    expect(Object.keys(per).sort()).toEqual(['dd-a', 'dd-b', 'dd-c']);
    // Least loaded first: each worker took a fair share (even split would be 333).
    for (const n of Object.values(per)) expect(n).toBeGreaterThan(150);
    const s = d.status();
    expect(s.throughput.completed).toBe(1000);
    expect(s.workers.map((w) => w.completed).reduce((a, b) => a + b, 0)).toBe(1000);
    expect(s.queue.length).toBe(0);
    console.log(`1,000 calls spread: ${JSON.stringify(per)}`);
  }, 60_000);

  it('a job on a worker killed mid-job completes elsewhere (at-least-once); at-most-once fails with WORKER_LOST', async () => {
    const g = freshGroup();
    const procs = await Promise.all(['dd-x', 'dd-y', 'dd-z'].map((n) => worker(n, g)));
    const d = await distributor(g);
    await d.waitForWorkers(3, 20_000);
    const byId = (id: string) => procs.find((p) => p.id === id)!;
    const runningOn = (job: Promise<unknown>) => {
      void job.catch(() => {});
      return eventually(
        () =>
          d
            .status()
            .workers.find((w) => w.health === 'up' && w.running.some((j) => j.fn === 'slowSquare'))
            ?.node,
        'the job running on a worker',
      );
    };

    const job = d.run<Stamped>('slowSquare', { n: 7, ms: 1500 });
    const first = await runningOn(job);
    await byId(first).kill('SIGKILL');
    const r = await within(job, 'the retried job', 15_000);
    expect(r.value).toBe(49);
    expect(r.by).not.toBe(first);
    const s = d.status();
    expect(s.throughput.retried).toBe(1);
    expect(s.recentFailures).toEqual([
      expect.objectContaining({ fn: 'slowSquare', worker: first, retried: true }),
    ]);
    expect(s.workers.find((w) => w.node === first)?.health).toBe('lost');

    const once = d.run<Stamped>('slowSquare', { n: 8, ms: 1500 }, { delivery: 'at-most-once' });
    const second = await runningOn(once);
    await byId(second).kill('SIGKILL');
    const err = await within(
      once.then(
        () => undefined,
        (e: unknown) => e,
      ),
      'the at-most-once job settles',
      15_000,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('WORKER_LOST');
  }, 60_000);
});

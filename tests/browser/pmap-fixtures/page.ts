// The parallelMap fixture page: Web Worker pools (`createWebWorkerPool`, troupe/patterns/browser)
// and `parallelMap` over them, driven from Playwright through `window.pmx` (plain JSON in and out;
// errors come back as `{ code, message }`).
import { createNode, TroupeError } from '../../../core/index.ts';
import {
  createWebWorkerPool,
  type PoolWorker,
  type WebWorkerPool,
} from '../../../patterns/browser.ts';
import { parallelMap, type MapPool } from '../../../patterns/parallel-map.ts';
import { fib } from './fib.ts';

type Failure = { code: string; message: string };

/** Every Worker the pools spawned, by the name the pool gave it (= its node id). */
const spawned = new Map<string, Worker>();

function spawnPoolWorker(name: string): Worker {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name });
  spawned.set(name, worker);
  return worker;
}

const pool = (size: number): Promise<WebWorkerPool> =>
  createWebWorkerPool({ size, spawn: spawnPoolWorker });

const failure = (err: unknown): Failure =>
  err instanceof TroupeError
    ? { code: err.code, message: err.message }
    : { code: 'NOT_A_TROUPE_ERROR', message: String(err) };

/** Settle `p` as `{ value }` or `{ error }`. */
const settle = <T>(p: Promise<T>): Promise<{ value?: T; error?: Failure }> =>
  p.then(
    (value) => ({ value }),
    (err: unknown) => ({ error: failure(err) }),
  );

/** `p`, or a `TEST_TIMEOUT` failure after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TroupeError('TIMEOUT', `TEST_TIMEOUT: not settled within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Sent as source text to the workers: self-contained and self-recursive. */
const plainFib = function fibr(n: number): number {
  return n < 2 ? n : fibr(n - 1) + fibr(n - 2);
};

/** Busy for 150 ms (surely still running when its worker is killed 40 ms in), then 2n. */
const busyDouble = (n: number): number => {
  const end = Date.now() + 150;
  while (Date.now() < end);
  return n * 2;
};

/** A pool that records every chunk it is asked to run. */
function recording(inner: MapPool): MapPool & { chunks: { worker: string; size: number }[] } {
  const chunks: { worker: string; size: number }[] = [];
  return {
    chunks,
    workers: () => inner.workers(),
    runChunk(id, fn, items, timeout) {
      chunks.push({ worker: id, size: items.length });
      return inner.runChunk(id, fn, items, timeout);
    },
  };
}

/** A pool that kills the worker running the `nth` chunk `afterMs` after handing it over. */
function killingNth(
  inner: WebWorkerPool,
  nth: number,
  afterMs: number,
  how: 'pool' | 'worker',
): MapPool & { killed: string[] } {
  let calls = 0;
  const killed: string[] = [];
  return {
    killed,
    workers: () => inner.workers(),
    runChunk(id, fn, items, timeout) {
      if (++calls === nth) {
        setTimeout(() => {
          killed.push(id);
          // `worker`: the app terminates the Worker object itself, behind the pool's back.
          if (how === 'pool') inner.terminate(id);
          else spawned.get(id)!.terminate();
        }, afterMs);
      }
      return inner.runChunk(id, fn, items, timeout);
    },
  };
}

const pmx = {
  /** Results of plain and named maps against a plain `map`, chunking, failures of the function. */
  async basics(size: number) {
    const p = await pool(size);
    try {
      const ids = p.workerIds();
      const items = Array.from({ length: 24 }, (_, i) => i);
      const expected = items.map(fib);
      const plain = await parallelMap(plainFib, items, { workers: p });
      const named = await parallelMap('fib', items, { workers: p });
      // chunkSize 5 over 24 items: chunks of 5, 5, 5, 5, 4; onChunk sees each chunk's first index.
      const rec = recording(p);
      const starts: number[] = [];
      const chunked = await parallelMap(plainFib, items, {
        workers: rec,
        chunkSize: 5,
        onChunk: (out, start) => void starts.push(start, out.length),
      });
      const empty = await parallelMap(plainFib, [], { workers: p });
      const thrown = await settle(
        parallelMap(
          (n: number) => {
            if (n === 3) throw new Error('three');
            return n;
          },
          [1, 2, 3, 4],
          { workers: p, chunkSize: 1 },
        ),
      );
      const thrownNamed = await settle(
        parallelMap('failOn3', [1, 2, 3, 4], { workers: p, chunkSize: 1 }),
      );
      const unknownFn = await settle(parallelMap('nope', [1], { workers: p }));
      return {
        ids,
        expected,
        plain,
        named,
        chunked,
        chunks: rec.chunks,
        starts,
        empty,
        thrown: thrown.error,
        thrownNamed: thrownNamed.error,
        unknownFn: unknownFn.error,
      };
    } finally {
      await p.close();
    }
  },

  /** A worker killed (by the pool, or its Worker terminated by the app) while it runs a chunk. */
  async killMidMap(size: number, how: 'pool' | 'worker', onFailure: 'retry' | 'fail') {
    // Heartbeats and chunk timeouts far beyond the wait below: the loss must be seen because the
    // worker was terminated, not because it fell silent.
    const node = createNode({
      name: `page-${Math.random().toString(36).slice(2, 8)}`,
      secret: 'pmap-fixture-secret',
      heartbeatTimeout: 300_000,
    });
    const p = await createWebWorkerPool({ node, size, spawn: spawnPoolWorker });
    try {
      const items = Array.from({ length: 8 }, (_, i) => i);
      const killing = killingNth(p, 2, 40, how);
      const r = await settle(
        within(
          parallelMap(busyDouble, items, {
            workers: killing,
            chunkSize: 1,
            onFailure,
            chunkTimeout: 300_000,
          }),
          20_000,
        ),
      );
      // Still usable afterwards: the survivors run a whole map.
      const after = await within(
        parallelMap(busyDouble, [1, 2, 3], { workers: p, chunkSize: 1 }),
        20_000,
      );
      return {
        ids: p.workerIds(),
        killed: killing.killed,
        value: r.value,
        error: r.error,
        expected: items.map((n) => n * 2),
        after,
        peers: p.node.peers().sort(),
      };
    } finally {
      await p.close();
      await node.shutdown();
    }
  },

  /** A pool grows and shrinks; one linked to the page's own node leaves it running on close. */
  async resizeAndOwnNode() {
    const node = createNode({
      name: `page-${Math.random().toString(36).slice(2, 8)}`,
      secret: 'pmap-fixture-secret',
    });
    const p = await createWebWorkerPool({ node, size: 1, spawn: spawnPoolWorker });
    const sizes: number[] = [p.workerIds().length];
    await p.resize(3);
    sizes.push(p.workerIds().length);
    const rec = recording(p);
    const items = Array.from({ length: 12 }, (_, i) => i + 10);
    const out = await parallelMap('fib', items, { workers: rec, chunkSize: 2 });
    const used = [...new Set(rec.chunks.map((c) => c.worker))].sort();
    const idsAt3 = p.workerIds();
    const peersAt3 = node.peers().sort();
    await p.resize(1);
    sizes.push(p.workerIds().length);
    const kept = p.workerIds();
    await p.close();
    const peersAfter = node.peers();
    // The node is not the pool's: it still runs.
    const stillUp = await node.call(
      node.spawn(async (self) => self.reply(await self.receive())),
      'ping',
      { timeout: 2000 },
    );
    await node.shutdown();
    return {
      sizes,
      out,
      expected: items.map(fib),
      used,
      idsAt3,
      peersAt3,
      kept,
      peersAfter,
      stillUp,
    };
  },

  /** A worker that never links: the pool gives up after `startTimeout` and terminates it. */
  async startTimeout() {
    let terminated = 0;
    const r = await settle(
      createWebWorkerPool({
        size: 1,
        startTimeout: 1500,
        spawn: (name) => {
          const w: PoolWorker = new Worker(new URL('./idle-worker.ts', import.meta.url), {
            type: 'module',
            name,
          });
          const terminate = w.terminate.bind(w);
          w.terminate = () => {
            terminated++;
            return terminate();
          };
          return w;
        },
      }),
    );
    return { error: r.error, terminated };
  },

  /**
   * The same CPU-bound job on 1 worker and on each of `sizes` workers, `rounds` times each;
   * milliseconds of every round (the machine is shared: the best round is the least disturbed).
   */
  async timing(sizes: number[], n: number, count: number, rounds: number) {
    const items = Array.from({ length: count }, () => n);
    const expected = JSON.stringify(items.map(fib));
    const out: { workers: number; ms: number[]; ok: boolean }[] = [];
    for (const size of [1, ...sizes]) {
      const p = await pool(size);
      try {
        // Warm every worker (JIT) first.
        await parallelMap(
          'fib',
          Array.from({ length: size * 2 }, () => n - 4),
          { workers: p, chunkSize: 1 },
        );
        const run = { workers: size, ms: [] as number[], ok: true };
        for (let i = 0; i < rounds; i++) {
          const t0 = performance.now();
          const r = await parallelMap('fib', items, { workers: p, chunkSize: 2 });
          run.ms.push(performance.now() - t0);
          run.ok &&= JSON.stringify(r) === expected;
        }
        out.push(run);
      } finally {
        await p.close();
      }
    }
    return { cores: navigator.hardwareConcurrency, runs: out };
  },
};

/** What the test drives. */
export type Pmx = typeof pmx;

(globalThis as unknown as { pmx: Pmx }).pmx = pmx;

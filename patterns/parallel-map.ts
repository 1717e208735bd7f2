/**
 * `parallelMap` (Erlangen's parallel map as a library function): split the items into chunks,
 * run the chunks on a pool of workers — threads of this process, or other nodes of the cluster —
 * and return the results in order. Host-neutral: a pool is anything that can run a chunk on a
 * named worker; `createThreadPool` (troupe/patterns/node) makes one from `worker_threads`,
 * `createWebWorkerPool` (troupe/patterns/browser) from Web Workers.
 */
import { TroupeError, toTroupeError, type ActorRef, type Node } from '../core/index.ts';
import {
  FUNCTION_SERVER_PREFIX,
  isWorkerLoss,
  unwrap,
  type FunctionRequest,
  type JobContext,
  type Outcome,
} from './functions.ts';
import type {} from './errors.ts'; // the pattern error codes (NO_WORKER, …)

/**
 * What to map: the name of a function the workers serve (works everywhere), or a plain function,
 * sent as source text (only to workers that allow it, like your own threads). A plain function
 * must be self-contained: it cannot use variables or imports from around it.
 */
export type MapFunction<T, R> = string | ((item: T, job: JobContext) => R | Promise<R>);

/** Workers that run chunks of a map. */
export interface MapPool {
  /** Ids of the workers usable now. */
  workers(): string[];
  /**
   * Map `fn` over `items` on worker `id`; resolves with the outputs in order. When `signal`
   * aborts, stop the chunk (the worker's job sees its own signal abort) and reject.
   */
  runChunk(
    id: string,
    fn: MapFunction<any, any>,
    items: unknown[],
    timeout: number,
    signal?: AbortSignal,
  ): Promise<unknown[]>;
}

/** Options of {@link parallelMap}. */
export interface ParallelMapOptions<R = unknown> {
  /** The pool of workers to run on. */
  workers: MapPool;
  /** Items per chunk. @default enough for about 4 chunks per worker */
  chunkSize?: number;
  /** Chunks in flight per worker. @default 1 */
  perWorker?: number;
  /**
   * When a worker dies (or times out) with a chunk: `retry` runs the chunk on another worker (up
   * to `retries` times), `fail` rejects the whole map with `WORKER_LOST`. A chunk whose function
   * throws always fails the map (`JOB_FAILED`). @default 'retry'
   */
  onFailure?: 'retry' | 'fail';
  /** Most re-runs of one chunk. @default 2 */
  retries?: number;
  /** Time limit for one chunk in ms. @default 60000 */
  chunkTimeout?: number;
  /**
   * Called as each chunk's results arrive (in completion order, not item order), with the index
   * of the chunk's first item: for progress displays. If it throws, the map rejects with that.
   */
  onChunk?: (results: R[], start: number) => void;
  /**
   * Cancel the map: it rejects with `ABORTED` and every chunk still running is cancelled, so
   * each worker's job sees its signal (`job.signal`, the function's second argument) abort.
   * @default undefined
   */
  signal?: AbortSignal;
}

/**
 * Map `fn` over `items` on a pool of workers; results in the order of `items`. A plain function
 * gets the job's context as its second argument (`job.signal`: see `options.signal`). When the
 * map fails, the chunks still running are cancelled.
 * @throws {TroupeError} `NO_WORKER` (the pool has no usable worker), `WORKER_LOST` (a worker died
 * and `onFailure` is `fail` or retries ran out), `JOB_FAILED` (`fn` threw), `INVALID_MESSAGE`,
 * `ABORTED` (`options.signal` aborted).
 * @example
 * const pool = await createThreadPool({ size: 4 });
 * const out = await parallelMap((n: number) => n * n, [1, 2, 3], { workers: pool }); // [1, 4, 9]
 */
export function parallelMap<T, R>(
  fn: MapFunction<T, R>,
  items: readonly T[],
  options: ParallelMapOptions<Awaited<R>>,
): Promise<Awaited<R>[]> {
  const pool = options.workers;
  const perWorker = Math.max(1, options.perWorker ?? 1);
  const retries = options.onFailure === 'fail' ? 0 : (options.retries ?? 2);
  const chunkTimeout = options.chunkTimeout ?? 60_000;
  const results: unknown[][] = [];
  const initial = pool.workers();
  const size = Math.max(
    1,
    options.chunkSize ?? Math.ceil(items.length / Math.max(1, initial.length * 4)),
  );
  const queue: { index: number; start: number; items: T[]; attempts: number }[] = [];
  for (let i = 0, k = 0; i < items.length; i += size, k++)
    queue.push({ index: k, start: i, items: items.slice(i, i + size), attempts: 0 });
  const signal = options.signal;
  if (signal?.aborted)
    return Promise.reject(
      new TroupeError('ABORTED', 'parallelMap aborted', { cause: signal.reason }),
    );
  if (queue.length === 0) return Promise.resolve([]);
  if (initial.length === 0)
    return Promise.reject(new TroupeError('NO_WORKER', 'the pool has no worker'));

  return new Promise((resolve, reject) => {
    const busy = new Map<string, number>();
    const dead = new Set<string>();
    let left = queue.length;
    let failed = false;
    // Cancels every running chunk when the map ends early (aborted, or failed).
    const stop = new AbortController();
    const onAbort = (): void =>
      finish(new TroupeError('ABORTED', 'parallelMap aborted', { cause: signal!.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (err: unknown): void => {
      if (failed) return;
      failed = true;
      signal?.removeEventListener('abort', onAbort);
      stop.abort(err);
      reject(err);
    };

    const pump = (): void => {
      if (failed) return;
      while (queue.length) {
        const id = pool
          .workers()
          .filter((w) => !dead.has(w) && (busy.get(w) ?? 0) < perWorker)
          .sort((a, b) => (busy.get(a) ?? 0) - (busy.get(b) ?? 0))[0];
        if (id === undefined) break;
        const chunk = queue.shift()!;
        chunk.attempts++;
        busy.set(id, (busy.get(id) ?? 0) + 1);
        pool.runChunk(id, fn, chunk.items, chunkTimeout, stop.signal).then(
          (out) => {
            busy.set(id, busy.get(id)! - 1);
            if (failed) return;
            if (!Array.isArray(out) || out.length !== chunk.items.length) {
              finish(
                new TroupeError(
                  'JOB_FAILED',
                  `worker ${id} returned ${Array.isArray(out) ? out.length : 'no'} results for ${chunk.items.length} items`,
                ),
              );
              return;
            }
            results[chunk.index] = out;
            if (options.onChunk) {
              try {
                options.onChunk(out as Awaited<R>[], chunk.start);
              } catch (err) {
                finish(err);
                return;
              }
            }
            if (--left === 0) {
              failed = true; // settled: a late abort changes nothing
              signal?.removeEventListener('abort', onAbort);
              resolve(results.flat() as Awaited<R>[]);
            } else pump();
          },
          (err: unknown) => {
            busy.set(id, busy.get(id)! - 1);
            if (failed) return;
            const e = toTroupeError(err);
            const lost = isWorkerLoss(e) || e.code === 'TIMEOUT';
            if (!lost) return finish(e);
            dead.add(id);
            if (chunk.attempts > retries) {
              return finish(
                new TroupeError(
                  'WORKER_LOST',
                  `worker ${id} failed with the chunk of items ${chunk.start}..${chunk.start + chunk.items.length - 1} (${e.code}); ${retries ? `gave up after ${chunk.attempts} attempts` : 'onFailure is "fail"'}`,
                  { cause: e },
                ),
              );
            }
            queue.unshift(chunk);
            pump();
          },
        );
      }
      // Nothing running and nobody to run the rest: give up instead of hanging.
      if (queue.length && [...busy.values()].every((n) => n === 0)) {
        const usable = pool.workers().filter((w) => !dead.has(w));
        if (usable.length === 0)
          finish(new TroupeError('NO_WORKER', `no worker left for ${queue.length} chunk(s)`));
      }
    };
    pump();
  });
}

/**
 * A pool over function servers reached through `node`: `servers()` gives the current ones by
 * worker id. Named functions go as `map`, plain functions as `mapSource`.
 */
export function refPool(
  node: Node,
  servers: () => Map<string, ActorRef<FunctionRequest, Outcome>>,
): MapPool {
  return {
    workers: () => [...servers().keys()],
    async runChunk(id, fn, items, timeout, signal) {
      const ref = servers().get(id);
      if (!ref) throw new TroupeError('NO_ACTOR', `worker ${id} left the pool`);
      const request: FunctionRequest =
        typeof fn === 'string'
          ? { op: 'map', fn, items }
          : { op: 'mapSource', src: fn.toString(), items };
      return unwrap(await node.call<Outcome<unknown[]>>(ref, request, { timeout, signal }));
    },
  };
}

/**
 * A pool over other nodes' function servers (nodes that called `serveFunctions`, or
 * `startWorker` with functions): all the cluster's, or those of `nodes`. Map with a function
 * name they serve.
 * @example
 * await parallelMap('fib', items, { workers: nodePool(node) })
 */
export function nodePool(node: Node, options: { nodes?: string[] } = {}): MapPool {
  return refPool(node, () => {
    const out = new Map<string, ActorRef<FunctionRequest, Outcome>>();
    for (const [name, ref] of node.registered()) {
      if (!name.startsWith(FUNCTION_SERVER_PREFIX) || !node.isReachable(ref.node)) continue;
      if (options.nodes && !options.nodes.includes(ref.node)) continue;
      out.set(ref.node, ref as ActorRef<FunctionRequest, Outcome>);
    }
    return out;
  });
}

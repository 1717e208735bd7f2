/**
 * troupe/patterns/browser — the browser layer of the workflows: `createWebWorkerPool` runs
 * parallel maps on Web Workers, each a troupe node linked to the page over its port, and
 * `servePoolWorker` is what each of those workers runs. The browser counterpart of
 * `createThreadPool` (troupe/patterns/node); no Node API, and nothing touches the DOM at load time.
 */
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { createNode, TroupeError, type ActorRef, type Node } from '../core/index.ts';
import {
  createWorkerNode,
  spawnWorkerNode,
  type PortEndpoint,
  type WorkerNodeOptions,
} from '../adapters/worker.ts';
import {
  defineFunctionServer,
  FUNCTION_SERVER_BEHAVIOUR,
  type FunctionRequest,
  type FunctionTable,
  type Outcome,
} from './functions.ts';
import { refPool, type MapPool } from './parallel-map.ts';

/** What {@link WebWorkerPoolOptions.spawn} returns: a `Worker` (anything that posts messages and can be terminated). */
export type PoolWorker = PortEndpoint & { terminate(): unknown };

/** Options of {@link createWebWorkerPool}. */
export interface WebWorkerPoolOptions {
  /**
   * Start one Web Worker whose script calls {@link servePoolWorker}. `name` is the node id the
   * pool gives the worker: pass it as the Worker's `name` option (bundlers want the
   * `new Worker(new URL('./w.ts', import.meta.url), …)` call in your own code, hence a callback).
   * @example (name) => new Worker(new URL('./pool-worker.ts', import.meta.url), { type: 'module', name })
   */
  spawn: (name: string, index: number) => PoolWorker;
  /** Number of workers. @default navigator.hardwareConcurrency, else 4 */
  size?: number;
  /** Link the workers to this node (they then are leaves of its cluster). @default a private node */
  node?: Node;
  /** Give up on a worker that does not start within this many ms. @default 20000 */
  startTimeout?: number;
}

/** A pool of Web Workers, each running a troupe node with a function server. */
export interface WebWorkerPool extends MapPool {
  /** The node the workers are linked to. */
  readonly node: Node;
  /** The node ids of the workers still running, in the order they were started. */
  workerIds(): string[];
  /** Stop one worker now (its running chunk fails over as `parallelMap` is told). */
  terminate(id: string): void;
  /** Start or stop workers until there are `size` (the newest stop first). */
  resize(size: number): Promise<void>;
  /** Stop every worker (and the private node, if the pool made one). */
  close(): Promise<void>;
}

interface Member {
  index: number;
  ref: ActorRef<FunctionRequest, Outcome>;
}

let poolCount = 0;

/**
 * Start `size` Web Workers for {@link parallelMap}. Each is a troupe node linked to `node` over
 * its port, serving the functions its script gave {@link servePoolWorker}. A worker that dies
 * leaves the pool, and its chunk is retried elsewhere (or fails the map, as `parallelMap` is
 * told): at once when the pool or the app terminates it (the pool hooks the Worker's
 * `terminate()`, which browsers report to nobody), when it errors out or shuts its node down;
 * otherwise after the heartbeat timeout.
 * @throws {TroupeError} `TIMEOUT` (a worker did not start in time), `TRANSPORT_CLOSED` (a worker's
 * script failed or was terminated while starting), `UNKNOWN_BEHAVIOUR` (its script did not call
 * `servePoolWorker`).
 * @example
 * const pool = await createWebWorkerPool({ size: 4, spawn: (name) => new Worker(new URL('./pool-worker.ts', import.meta.url), { type: 'module', name }) });
 * const squares = await parallelMap((n: number) => n * n, items, { workers: pool });
 * await pool.close();
 */
export async function createWebWorkerPool(options: WebWorkerPoolOptions): Promise<WebWorkerPool> {
  const size = options.size ?? (globalThis.navigator?.hardwareConcurrency || 4);
  const own = !options.node;
  const node =
    options.node ??
    createNode({ name: `pool-${bytesToHex(randomBytes(4))}`, secret: bytesToHex(randomBytes(16)) });
  const prefix = `${node.id}.w${++poolCount}`;
  const timeout = options.startTimeout ?? 20_000;
  const members = new Map<string, Member>();
  let next = 0;

  const servers = (): Map<string, ActorRef<FunctionRequest, Outcome>> => {
    const sorted = [...members].sort((a, b) => a[1].index - b[1].index);
    return new Map(sorted.map(([id, m]) => [id, m.ref]));
  };

  const startOne = async (): Promise<void> => {
    const index = next++;
    const name = `${prefix}.${index}`;
    const worker = options.spawn(name, index);
    let id: string | undefined;
    let gone = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failStart: (err: TroupeError) => void = () => {};
    // A browser tells nobody when a Worker is terminated: hook the call, so that a worker the app
    // (or this pool) terminates closes its link, and its calls fail as worker loss, at once.
    const terminate = worker.terminate;
    worker.terminate = function (this: PoolWorker) {
      const result = terminate.call(this);
      if (!gone) {
        gone = true;
        // Not synchronously: the link itself terminates the worker while it closes.
        const peer = id;
        if (peer !== undefined) queueMicrotask(() => node.disconnect(peer));
        else
          failStart(
            new TroupeError('TRANSPORT_CLOSED', `worker ${name} was terminated while starting`),
          );
      }
      return result;
    };
    try {
      id = await Promise.race([
        spawnWorkerNode(node, worker, { label: `worker ${index}` }),
        new Promise<never>((_, reject) => {
          failStart = reject;
          timer = setTimeout(
            () =>
              reject(
                new TroupeError('TIMEOUT', `worker ${name} did not start within ${timeout} ms`),
              ),
            timeout,
          );
        }),
      ]);
      if (gone)
        throw new TroupeError('TRANSPORT_CLOSED', `worker ${name} was terminated while starting`);
      const ref = (await node.spawn<FunctionRequest>(id, FUNCTION_SERVER_BEHAVIOUR)) as ActorRef<
        FunctionRequest,
        Outcome
      >;
      members.set(id, { index, ref });
      const self = id;
      node.watch(ref, () => {
        members.delete(self);
        node.disconnect(self); // the server is gone: the worker is of no use any more
      });
    } catch (err) {
      worker.terminate();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };

  const grow = async (count: number): Promise<void> => {
    const results = await Promise.allSettled(Array.from({ length: count }, () => startOne()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  try {
    await grow(size);
  } catch (err) {
    for (const id of members.keys()) node.disconnect(id);
    if (own) await node.shutdown();
    throw err;
  }

  let resizing: Promise<void> = Promise.resolve();
  return {
    ...refPool(node, servers),
    node,
    workerIds: () => [...servers().keys()],
    terminate: (id) => node.disconnect(id),
    resize(target) {
      const run = resizing.then(async () => {
        const ids = [...servers().keys()];
        for (const id of ids.slice(Math.max(0, target))) {
          members.delete(id);
          node.disconnect(id);
        }
        if (target > ids.length) await grow(target - ids.length);
      });
      resizing = run.catch(() => {});
      return run;
    },
    async close() {
      for (const id of [...members.keys()]) node.disconnect(id);
      members.clear();
      if (own) await node.shutdown();
    },
  };
}

/** Options of {@link servePoolWorker}. */
export interface PoolWorkerOptions {
  /** The named functions this worker serves (`parallelMap('name', …)`). @default none */
  functions?: FunctionTable;
  /**
   * Run plain functions that `parallelMap` sends as source text. The worker trusts its page (and
   * the cluster the page's node is in) with code execution, as a `createThreadPool` thread does;
   * it needs a CSP that allows `unsafe-eval` in the worker. @default true
   */
  allowSource?: boolean;
  /** Other options of the worker's node (heartbeats, limits); its name comes from the pool. */
  node?: Omit<WorkerNodeOptions, 'name'>;
}

/**
 * Inside a Web Worker of a {@link createWebWorkerPool} pool: create this worker's node (named as
 * the pool asked, through the Worker's `name`), link it to the page and let the page start a
 * function server here. To leave the pool from inside, `await node.shutdown()` (the page sees
 * the link close at once), then `self.close()`.
 * @example
 * // pool-worker.ts
 * servePoolWorker({ functions: { fib: defineFunction({ args: z.number(), result: z.number(), run: fib }) } });
 */
export function servePoolWorker(options: PoolWorkerOptions = {}): {
  node: Node;
  parent: Promise<string>;
} {
  const name = (globalThis as { name?: unknown }).name;
  const { node, parent } = createWorkerNode({
    ...options.node,
    name: typeof name === 'string' && name ? name : undefined,
  });
  defineFunctionServer(node, options.functions ?? {}, {
    allowSource: options.allowSource ?? true,
    concurrency: 1,
  });
  return { node, parent };
}
export { workerChild, type WorkerChildOptions } from './supervised-worker.ts';

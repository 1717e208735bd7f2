/**
 * troupe/patterns/node — the Node layer of the workflows: a process becomes a worker or a master
 * of a TCP cluster found by UDP multicast (or seeds), and `createThreadPool` runs parallel maps on
 * `worker_threads`. The host-neutral parts are in `troupe/patterns`.
 */
import os from 'node:os';
import { format } from 'node:util';
import { Worker } from 'node:worker_threads';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import {
  createNode,
  TroupeError,
  type ActorRef,
  type Node,
  type NodeOptions,
} from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { multicast, type MulticastOptions } from '../adapters/multicast.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { FUNCTION_SERVER_BEHAVIOUR, type FunctionRequest, type Outcome } from './functions.ts';
import {
  serveWorker,
  runMaster,
  type MasterOptions,
  type ServeWorkerOptions,
  type WorkerHandle,
  type Master,
  type WorkerService,
} from './master-worker.ts';
import { refPool, type MapPool } from './parallel-map.ts';

/** How a process joins the cluster. */
export interface ClusterNodeOptions {
  /** The node id. @default a random one */
  name?: string;
  /** The cluster secret. @default the TROUPE_SECRET environment variable (required one way or the other) */
  secret?: string;
  /** TCP `host:port` to listen on. @default '127.0.0.1:0' */
  listen?: string;
  /** Multicast discovery settings, or `false` for seeds only. @default {} (multicast with its defaults: 127.0.0.1) */
  discovery?: MulticastOptions | false;
  /** Addresses (`host:port` or `tcp://…`) to join through, as well as or instead of discovery. */
  seeds?: string[];
  /** Other node options (heartbeats, limits). */
  node?: Omit<NodeOptions, 'name' | 'secret' | 'transports' | 'discovery'>;
}

/**
 * Start a node that listens on TCP and finds the cluster by multicast (and/or seeds).
 * @throws {TroupeError} `UNAUTHORIZED` when no secret is given or set in TROUPE_SECRET.
 */
export async function startClusterNode(options: ClusterNodeOptions = {}): Promise<Node> {
  const secret = options.secret ?? process.env.TROUPE_SECRET;
  if (!secret)
    throw new TroupeError(
      'UNAUTHORIZED',
      'a cluster secret is required: pass `secret` or set TROUPE_SECRET',
    );
  const node = createNode({
    ...options.node,
    name: options.name,
    secret,
    transports: [createTcpTransport({ listen: options.listen ?? '127.0.0.1:0' })],
    discovery: options.discovery === false ? undefined : multicast(options.discovery ?? {}),
  });
  await node.listen();
  for (const seed of options.seeds ?? []) {
    node.join(seed.includes('://') ? seed : `tcp://${seed}`).catch(() => {
      /* reported as node events; seeds are redialed */
    });
  }
  return node;
}

/** Options of {@link startWorker}. */
export interface StartWorkerOptions
  extends ClusterNodeOptions,
    Omit<ServeWorkerOptions, 'onTerminate' | 'console' | 'format'> {
  /** Define behaviours (`node.define`) before the worker is announced to masters. */
  setup?: (node: Node) => void | Promise<void>;
  /** Exit the process after a master's `terminate` (once the node shut down). @default true */
  exitOnTerminate?: boolean;
}

/**
 * Turn this process into a worker node: join the cluster, serve `functions` and the behaviours
 * `setup` defines, and wait for a master. A master's `terminate` shuts the node down and exits
 * the process; so do SIGINT and SIGTERM.
 * @example
 * await startWorker({ secret, functions: { fib: defineFunction({ args: z.number(), result: z.number(), run: fib }) } });
 */
export async function startWorker(
  options: StartWorkerOptions = {},
): Promise<{ node: Node; service: WorkerService }> {
  const node = await startClusterNode(options);
  await options.setup?.(node);
  const exit = options.exitOnTerminate ?? true;
  const stop = async (): Promise<void> => {
    await node.shutdown();
    if (exit) process.exit(0);
  };
  const service = serveWorker(node, {
    functions: options.functions,
    concurrency: options.concurrency,
    info: { pid: process.pid, host: os.hostname(), ...options.info },
    format: (args) => format(...args),
    onTerminate: stop,
  });
  const onSignal = (): void => void stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { node, service };
}

/** Options of {@link startMaster}. */
export interface StartMasterOptions extends ClusterNodeOptions, MasterOptions {
  /** Keep the master node running after `fn` returns (it is shut down by default). @default false */
  keepNode?: boolean;
}

/**
 * Start a master node, find the workers available now (at least `minWorkers`, waiting up to
 * `findTimeout`) and run `fn` with them; resolves with what `fn` returns. The master node is shut
 * down afterwards unless `keepNode`.
 * @example
 * await startMaster({ secret, minWorkers: 4 }, async (workers, master) => {
 *   await master.redirectLogsHere();
 *   console.log(await Promise.all(workers.map((w) => w.run('fib', 30))));
 *   await master.terminateAllWorkers();
 * });
 */
export async function startMaster<T>(
  options: StartMasterOptions,
  fn: (workers: WorkerHandle[], master: Master, node: Node) => T | Promise<T>,
): Promise<T> {
  const node = await startClusterNode(options);
  try {
    return await runMaster(node, options, (workers, master) => fn(workers, master, node));
  } finally {
    if (!options.keepNode) await node.shutdown();
  }
}

/** Options of {@link createThreadPool}. */
export interface ThreadPoolOptions {
  /** Number of threads. @default os.availableParallelism() */
  size?: number;
  /**
   * A module (path or URL) exporting `functions`, a FunctionTable: the named functions the threads
   * serve. Plain functions given to `parallelMap` need none.
   */
  functions?: string | URL;
  /** Link the threads to this node (they then are leaves of its cluster). @default a private node */
  node?: Node;
  /** Give up on a thread that does not start within this many ms. @default 20000 */
  startTimeout?: number;
}

/** A pool of `worker_threads`, each running a troupe node with a function server. */
export interface ThreadPool extends MapPool {
  /** The node the threads are linked to. */
  readonly node: Node;
  /** The node ids of the threads still running. */
  threadIds(): string[];
  /** Stop one thread now (its running chunk fails over as `parallelMap` is told). */
  terminate(id: string): void;
  /** Stop every thread (and the private node, if the pool made one). */
  close(): Promise<void>;
}

let poolCount = 0;

/**
 * Start `size` worker threads for {@link parallelMap}. Each thread is a troupe node linked to
 * `node` over its MessagePort; a thread that dies is noticed at once and leaves the pool.
 * @example
 * const pool = await createThreadPool({ size: 4 });
 * const squares = await parallelMap((n: number) => n * n, items, { workers: pool });
 * await pool.close();
 */
export async function createThreadPool(options: ThreadPoolOptions = {}): Promise<ThreadPool> {
  const size = options.size ?? os.availableParallelism();
  const own = !options.node;
  const node =
    options.node ??
    createNode({
      name: `pool-${process.pid}-${bytesToHex(randomBytes(3))}`,
      secret: bytesToHex(randomBytes(16)),
    });
  const prefix = `${node.id}.t${++poolCount}`;
  const servers = new Map<string, ActorRef<FunctionRequest, Outcome>>();
  const functions = options.functions === undefined ? undefined : toUrl(options.functions);
  // From the sources (this repository) the thread registers tsx first (thread-entry.mjs); the
  // compiled package (dist/) starts the compiled worker directly, with no loader.
  const entry = import.meta.url.endsWith('.ts')
    ? new URL('./thread-entry.mjs', import.meta.url)
    : new URL('./thread-worker.js', import.meta.url);
  const timeout = options.startTimeout ?? 20_000;

  const startOne = async (i: number): Promise<void> => {
    const worker = new Worker(entry, { workerData: { name: `${prefix}.${i}`, functions } });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const id = await Promise.race([
      spawnWorkerNode(node, worker, { label: `thread ${i}` }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new TroupeError('TIMEOUT', `thread ${i} did not start within ${timeout} ms`)),
          timeout,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const ref = await node.spawn<FunctionRequest>(id, FUNCTION_SERVER_BEHAVIOUR);
    servers.set(id, ref as ActorRef<FunctionRequest, Outcome>);
    node.watch(ref, () => servers.delete(id));
  };

  try {
    await Promise.all(Array.from({ length: size }, (_, i) => startOne(i)));
  } catch (err) {
    for (const id of servers.keys()) node.disconnect(id);
    if (own) await node.shutdown();
    throw err;
  }
  return {
    ...refPool(node, () => servers),
    node,
    threadIds: () => [...servers.keys()],
    terminate: (id) => node.disconnect(id),
    async close() {
      const ids = [...servers.keys()];
      for (const id of ids) node.disconnect(id);
      if (own) await node.shutdown();
    },
  };
}

function toUrl(p: string | URL): string {
  if (p instanceof URL) return p.href;
  if (/^[a-z]+:/i.test(p)) return p;
  return pathToFileURL(resolve(p)).href;
}
export {
  threadChild,
  processChild,
  processEndpoint,
  parentProcess,
  type NodeChildOptions,
} from './supervised-node.ts';

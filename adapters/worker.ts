/**
 * troupe/worker — links over message ports: dedicated Web Workers (`new Worker(…)` in a page,
 * `self` inside the worker), `MessageChannel` ports, and Node `worker_threads` (`Worker`,
 * `parentPort`, `MessagePort`). Browser-safe: nothing here touches Node or the DOM at load time.
 *
 * In a page: `spawnWorkerNode(node, new Worker(url, { type: 'module' }))`; in the worker:
 * `createWorkerNode()`. Any other pair of ports: `connectPort(node, port)` on each side.
 */
import { createNode, TroupeError, type Node, type NodeOptions } from '../core/index.ts';
import {
  createPortConnection,
  type PortConnectionOptions,
  type PortEndpoint,
} from './port-connection.ts';

export { createPortConnection } from './port-connection.ts';
export type {
  PortConnection,
  PortConnectionOptions,
  PortControl,
  PortEndpoint,
} from './port-connection.ts';

/** Options of {@link connectPort}. */
export interface ConnectPortOptions extends PortConnectionOptions {
  /** Whether this side counts as the dialer (only breaks ties between duplicate links). @default false */
  initiator?: boolean;
  /** The secret this link proves in the handshake. @default the node's secret */
  secret?: string;
}

/**
 * Link `node` to whatever node listens on the other side of `endpoint`; resolves with that node's
 * id once the handshake is done.
 * @throws {TroupeError} `UNAUTHORIZED` (secrets differ), `TRANSPORT_CLOSED` (the other end went away), …
 * @example
 * const { port1, port2 } = new MessageChannel();
 * const [idOfB, idOfA] = await Promise.all([connectPort(a, port1, { initiator: true }), connectPort(b, port2)]);
 */
export function connectPort(
  node: Node,
  endpoint: PortEndpoint,
  options: ConnectPortOptions = {},
): Promise<string> {
  const conn = createPortConnection(endpoint, options);
  return node.attach(
    conn,
    options.initiator ?? false,
    options.secret === undefined ? {} : { secret: options.secret },
  );
}

/** Options of {@link spawnWorkerNode}. */
export interface SpawnWorkerNodeOptions {
  /** The secret of this link. @default the node's secret */
  secret?: string;
  /** Hand the secret to the worker, so its node needs none configured (it is your own worker's code). @default true */
  shareSecret?: boolean;
  /** Terminate the worker when the link closes (`node.disconnect(id)`, a failure, shutdown). @default true */
  terminate?: boolean;
  /** Description of the worker in events and the cluster view. @default 'worker' */
  label?: string;
}

/**
 * In a page (or a Node thread): link `node` to the node a freshly created worker starts with
 * {@link createWorkerNode}; resolves with the worker node's id. Call it in the same task as
 * `new Worker(…)` or later: messages are held until both sides listen.
 *
 * The worker's death is seen at once when the host reports it (a browser `error` event; Node's
 * `error`/`exit`) and otherwise by the heartbeat timeout. To stop the worker, call
 * `node.disconnect(id)`: the link closes and (by default) the worker is terminated.
 * @throws {TroupeError} `TRANSPORT_CLOSED` when the worker fails to start, `UNAUTHORIZED`, …
 * @example
 * const worker = new Worker(new URL('./tile-worker.ts', import.meta.url), { type: 'module' });
 * const id = await spawnWorkerNode(node, worker);   // the worker's node id
 * const answer = await node.call('tiles-1', job);    // a name the worker registered
 */
export function spawnWorkerNode(
  node: Node,
  worker: PortEndpoint,
  options: SpawnWorkerNodeOptions = {},
): Promise<string> {
  const secret = options.secret ?? node.options.secret;
  return connectPort(node, worker, {
    initiator: true,
    secret,
    shareSecret: options.shareSecret === false ? undefined : secret,
    terminate: options.terminate ?? true,
    label: options.label ?? 'worker',
  });
}

/** Options of {@link connectToParent}. */
export interface ConnectToParentOptions {
  /** The endpoint to the parent. @default `self` in a Web Worker; `parentPort` in a Node worker thread */
  endpoint?: PortEndpoint;
  /** The secret of this link. @default the one the parent shares, else the node's secret */
  secret?: string;
  /** Give up when the parent does not answer within this many ms. @default the node's `handshakeTimeout` */
  timeout?: number;
}

/**
 * Inside a worker: link `node` to the node that spawned this worker ({@link spawnWorkerNode} on
 * the other side). Resolves with the parent node's id. The worker node then is a leaf: whatever
 * it has no route for goes up to its parent.
 * @throws {TroupeError} `TRANSPORT_CLOSED` when there is no parent or it does not answer in time.
 */
export async function connectToParent(
  node: Node,
  options: ConnectToParentOptions = {},
): Promise<string> {
  const endpoint = options.endpoint ?? (await parentEndpoint());
  const conn = createPortConnection(endpoint, { label: 'parent' });
  const timeout = options.timeout ?? node.options.handshakeTimeout;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const info = await Promise.race([
    conn.opened,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new TroupeError('TRANSPORT_CLOSED', `the parent did not answer within ${timeout} ms`),
        );
        conn.close();
      }, timeout);
    }),
  ]).finally(() => clearTimeout(timer));
  const secret = options.secret ?? info.secret;
  return node.attach(conn, false, secret === undefined ? {} : { secret });
}

/** Options of {@link createWorkerNode}: the node's, plus how to reach the parent. */
export interface WorkerNodeOptions extends NodeOptions {
  /** See {@link ConnectToParentOptions}. */
  parent?: ConnectToParentOptions;
}

/**
 * Inside a worker: create this worker's node and link it to its parent. The node is usable at
 * once (names registered now reach the parent when the link is up); `parent` resolves with the
 * parent's id, or rejects as {@link connectToParent} does.
 * @example
 * // tile-worker.ts
 * const { node } = createWorkerNode();
 * node.spawn(tileBehaviour, { name: 'tiles-1' });
 */
export function createWorkerNode(options: WorkerNodeOptions = {}): {
  node: Node;
  parent: Promise<string>;
} {
  const { parent: parentOptions, ...nodeOptions } = options;
  const node = createNode(nodeOptions);
  const parent = connectToParent(node, parentOptions);
  parent.catch(() => {}); // reported through `parent` and the node's events; never unhandled
  return { node, parent };
}

/** The endpoint to this worker's parent: `self` in a Web Worker, `parentPort` in a Node worker thread. */
async function parentEndpoint(): Promise<PortEndpoint> {
  type WorkerThreads = { parentPort: PortEndpoint | null };
  const g = globalThis as {
    WorkerGlobalScope?: unknown;
    postMessage?: unknown;
    process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown };
  };
  if (typeof g.WorkerGlobalScope === 'function' && typeof g.postMessage === 'function')
    return globalThis as unknown as PortEndpoint;
  if (g.process?.versions?.node) {
    // No `import 'node:…'` a bundler could see: Node ≥ 20.16 hands out built-ins directly; older
    // ones get a specifier built at run time.
    const specifier = ['node', 'worker_threads'].join(':');
    const mod = (g.process.getBuiltinModule?.(specifier) ??
      (await import(/* @vite-ignore */ specifier))) as WorkerThreads;
    if (mod.parentPort) return mod.parentPort;
  }
  throw new TroupeError(
    'TRANSPORT_CLOSED',
    'not running in a worker: there is no parent to connect to',
  );
}

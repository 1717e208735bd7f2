/**
 * Workers as supervised children (host-neutral): a child spec's `start` that creates a worker
 * (a browser Web Worker, a Node `worker_threads` worker, a child process behind a port-like
 * endpoint), links its node to the supervisor's node and spawns a named behaviour on it. The
 * worker's `terminate()`, a throw in the actor, an uncaught error or an exit of the worker is a
 * child exit the supervisor's strategy handles; when the child ends, its worker is closed.
 */
import { TroupeError, type ActorContext, type ActorRef, type Started } from '../core/index.ts';
import { spawnWorkerNode, type PortEndpoint } from '../adapters/worker.ts';

/** Options of {@link workerChild}. */
export interface WorkerChildOptions<W extends PortEndpoint> {
  /** Create the worker, e.g. `() => new Worker(url, { type: 'module' })`. Its script calls `createWorkerNode()`, defines `behaviour`, and calls `serveSupervision(node)` when the child spec has a name. */
  create: () => W;
  /** The named behaviour (from the worker node's behaviour table) to spawn on it. */
  behaviour: string;
  /** Its arguments (checked by the worker's zod schema for it). */
  args?: unknown;
  /** Description in events and the cluster view. @default 'supervised worker' */
  label?: string;
  /** Give up when the worker's node does not link within this many ms. @default 20000 */
  startTimeout?: number;
  /** Told of each worker started (to keep a handle on it, e.g. in tests). */
  onStart?: (worker: W, nodeId: string, ref: ActorRef<any, any>) => void;
}

/**
 * The `start` of a child spec that runs the child in its own worker; a restart creates a new
 * worker. The worker's `terminate()` is seen at once (a browser reports no event for it).
 * @throws {TroupeError} `TIMEOUT` when the worker's node does not link in time; as a remote spawn otherwise.
 * @example
 * const sup = node.spawn(supervisor({ children: [{ id: 'tiles', start: workerChild({ create: () => new Worker(url, { type: 'module' }), behaviour: 'tiles' }) }] }));
 */
export function workerChild<W extends PortEndpoint>(
  options: WorkerChildOptions<W>,
): { start: (ctx: ActorContext<unknown>) => Promise<Started> } {
  const timeout = options.startTimeout ?? 20_000;
  return {
    async start(ctx) {
      const node = ctx.node;
      const worker = options.create();
      let id: string | undefined;
      let closing = false;
      const terminate = worker.terminate?.bind(worker);
      if (terminate) {
        // Make an outside `terminate()` visible at once: close the link, which the supervisor
        // sees as `noconnection` (the port connection calls terminate again on close).
        worker.terminate = () => {
          const r = terminate();
          if (!closing && id !== undefined) {
            closing = true;
            node.disconnect(id);
          }
          return r;
        };
      }
      let timer: unknown;
      try {
        id = await Promise.race([
          spawnWorkerNode(node, worker, { label: options.label ?? 'supervised worker' }),
          new Promise<never>((_, reject) => {
            timer = node.clock.setTimeout(
              () => reject(new TroupeError('TIMEOUT', `worker did not link within ${timeout} ms`)),
              timeout,
            );
          }),
        ]);
      } catch (err) {
        closing = true;
        terminate?.();
        throw err;
      } finally {
        node.clock.clearTimeout(timer);
      }
      const nodeId = id;
      let ref: ActorRef<any, any>;
      try {
        ref = await ctx.spawnOn(nodeId, options.behaviour, options.args, { link: true });
      } catch (err) {
        closing = true;
        node.disconnect(nodeId);
        throw err;
      }
      options.onStart?.(worker, nodeId, ref);
      return {
        ref,
        stop: () => {
          closing = true;
          node.disconnect(nodeId);
        },
      };
    },
  };
}

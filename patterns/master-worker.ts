/**
 * Master and workers (after Cloud Haskell's SimpleLocalnet): a worker node waits for work; a
 * master finds the workers of the cluster, runs work on them, redirects their logs to itself and
 * terminates them. Host-neutral: it takes a node; `troupe/patterns/node` turns a Node process
 * into a worker or a master (TCP + multicast discovery), and a Web Worker host can do the same.
 */
import { z } from 'zod';
import {
  behaviour,
  toTroupeError,
  TroupeError,
  downOf,
  type ActorRef,
  type Node,
} from '../core/index.ts';
import {
  isWorkerLoss,
  serveFunctions,
  unwrap,
  FUNCTION_SERVER_PREFIX,
  type FunctionServer,
  type FunctionTable,
  type Outcome,
} from './functions.ts';
import type {} from './errors.ts'; // the pattern error codes (NO_WORKER, …)

/** Registry prefix of worker control actors: `troupe.worker:<node id>`. */
export const WORKER_PREFIX = 'troupe.worker:';

/** One line of a worker's console output, as the master receives it. */
export interface LogEntry {
  worker: string;
  stream: 'out' | 'err';
  line: string;
  at: number;
}

/** What a worker tells a master about itself. */
export interface WorkerInfo {
  node: string;
  functions: string[];
  behaviours: string[];
  info: Record<string, string | number | boolean>;
}

const RefLike = z.custom<ActorRef<LogEntry>>(
  (v) => typeof v === 'object' && v !== null && 'node' in v && 'id' in v,
);

/** What a worker's control actor takes (all are calls). */
export const ControlRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('info') }),
  z.object({ op: z.literal('terminate') }),
  z.object({ op: z.literal('logs'), to: RefLike.nullable(), keepLocal: z.boolean().optional() }),
]);
export type ControlRequest = z.infer<typeof ControlRequest>;

/** The console methods a worker redirects. */
type ConsoleLike = Pick<Console, 'log' | 'info' | 'debug' | 'warn' | 'error'>;
const METHODS = { log: 'out', info: 'out', debug: 'out', warn: 'err', error: 'err' } as const;

/** Options of {@link serveWorker}. */
export interface ServeWorkerOptions {
  /** Functions to serve (see `serveFunctions`); masters and distributors can run them. */
  functions?: FunctionTable;
  /** Jobs the function server advertises it can hold at once. @default 2 */
  concurrency?: number;
  /** Free-form facts a master sees (a pid, a host name). */
  info?: Record<string, string | number | boolean>;
  /** What `terminate` does after answering. @default shut the node down */
  onTerminate?: () => void | Promise<void>;
  /** The console whose output `redirectLogsHere` forwards. @default globalThis.console */
  console?: ConsoleLike;
  /** Turns console arguments into one line. @default strings as is, other values as JSON */
  format?: (args: unknown[]) => string;
}

/** A worker as {@link serveWorker} starts it. */
export interface WorkerService {
  /** The control actor, registered as `troupe.worker:<node id>`. */
  readonly ref: ActorRef<ControlRequest>;
  /** The function server, when `functions` were given. */
  readonly functions?: FunctionServer;
}

function defaultFormat(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ?? `${a.name}: ${a.message}`;
      try {
        return JSON.stringify(a) ?? String(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

/**
 * Make `node` a worker: a control actor registered as `troupe.worker:<node id>` answers a
 * master's `info`, `terminate` and `logs` requests, and `functions` (if any) are served. The
 * node's behaviour table (`node.define`) is what masters can spawn there.
 */
export function serveWorker(node: Node, options: ServeWorkerOptions = {}): WorkerService {
  const functions = options.functions
    ? serveFunctions(node, options.functions, { concurrency: options.concurrency })
    : undefined;
  const con = options.console ?? (globalThis.console as ConsoleLike);
  const format = options.format ?? defaultFormat;
  const originals = {
    ...Object.fromEntries(Object.keys(METHODS).map((k) => [k, con[k as keyof ConsoleLike]])),
  } as ConsoleLike;
  let unwatch: (() => void) | undefined;
  let forwarding = false;

  const restore = (): void => {
    unwatch?.();
    unwatch = undefined;
    Object.assign(con, originals);
  };

  const redirect = (to: ActorRef<LogEntry>, keepLocal: boolean): void => {
    restore();
    for (const [method, stream] of Object.entries(METHODS) as [
      keyof ConsoleLike,
      'out' | 'err',
    ][]) {
      con[method] = (...args: unknown[]) => {
        if (keepLocal) originals[method].apply(con, args);
        // A log line written while forwarding one (a listener that logs) stays local.
        if (forwarding) return;
        forwarding = true;
        try {
          for (const line of format(args).split('\n'))
            to.send({ worker: node.id, stream, line, at: Date.now() });
        } finally {
          forwarding = false;
        }
      };
    }
    // The master went away: print here again.
    unwatch = node.watch(to, () => {
      unwatch = undefined;
      Object.assign(con, originals);
    });
  };

  const ref = node.spawn(
    behaviour({
      schema: ControlRequest,
      handle: (m, _s: undefined, ctx) => {
        switch (m.op) {
          case 'info':
            ctx.reply({
              node: node.id,
              functions: options.functions ? Object.keys(options.functions) : [],
              behaviours: node.behaviours(),
              info: options.info ?? {},
            } satisfies WorkerInfo);
            return;
          case 'logs':
            if (m.to) redirect(m.to, m.keepLocal ?? false);
            else restore();
            ctx.reply(true);
            return;
          case 'terminate':
            ctx.reply(true);
            // After the reply has left: stop cleanly.
            setTimeout(() => {
              restore();
              Promise.resolve(options.onTerminate ? options.onTerminate() : node.shutdown()).catch(
                () => {},
              );
            }, 10);
            return;
        }
      },
      terminate: () => restore(),
    }),
    { name: WORKER_PREFIX + node.id },
  ) as ActorRef<ControlRequest>;
  return functions ? { ref, functions } : { ref };
}

/** A worker as a master sees it. */
export interface WorkerHandle {
  /** The worker's node id. */
  readonly id: string;
  /** Its control actor. */
  readonly ref: ActorRef<ControlRequest>;
  readonly info: WorkerInfo;
  /** Run one of its functions there. @throws as a function server answers (`JOB_FAILED`, `NO_WORKER`, …), `NODE_DOWN` */
  run<R = unknown>(fn: string, args: unknown, options?: { timeout?: number }): Promise<R>;
  /**
   * Spawn behaviour `name` on it (its behaviour table), monitor it and resolve with what it ends
   * with (Erlangen's pattern); rejects with `JOB_FAILED` when it ends abnormally.
   */
  spawn<R = unknown>(name: string, args?: unknown, options?: { timeout?: number }): Promise<R>;
}

/** Options of {@link Master.findWorkers}. */
export interface FindOptions {
  /** Wait until at least this many new workers are seen (or `timeout`). @default 0 */
  min?: number;
  /** Give up waiting for `min` after this many ms (then return what was found). @default 5000 */
  timeout?: number;
  /** After that, keep looking until no new worker appeared for this many ms. @default 300 */
  settle?: number;
}

/** Options of {@link Master}/{@link runMaster}. */
export interface MasterOptions {
  /** `runMaster` waits for this many workers before calling the function. @default 1 */
  minWorkers?: number;
  /** How long `runMaster`'s first search waits for `minWorkers`. @default 5000 */
  findTimeout?: number;
}

/** Options of {@link Master.redirectLogsHere}. */
export interface RedirectOptions {
  /** Called for each line. @default print `[worker] line` on this node's console */
  onLog?: (entry: LogEntry) => void;
  /** Workers also keep printing locally. @default false */
  keepLocal?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The master side: finds workers in the cluster registry, runs work on them, collects their
 * logs, terminates them.
 */
export class Master {
  readonly node: Node;
  #workers = new Map<string, WorkerHandle>();
  #seen = new Set<string>();
  #unwatch = new Map<string, () => void>();
  #sink: ActorRef<LogEntry> | undefined;
  #redirect: RedirectOptions | undefined;

  constructor(node: Node) {
    this.node = node;
  }

  /** The workers found so far that are still up. */
  workers(): WorkerHandle[] {
    return [...this.#workers.values()];
  }

  /**
   * Find workers not returned before (the first call: those available now; later calls: those
   * that came after). Waits for `min` of them, then until none appears for `settle` ms.
   */
  async findWorkers(options: FindOptions = {}): Promise<WorkerHandle[]> {
    const min = options.min ?? 0;
    const end = Date.now() + (options.timeout ?? 5000);
    const settle = options.settle ?? 300;
    let fresh = this.#candidates();
    while (fresh.length < min && Date.now() < end) {
      await sleep(50);
      fresh = this.#candidates();
    }
    let quietUntil = Date.now() + settle;
    while (Date.now() < quietUntil && Date.now() < end) {
      await sleep(50);
      const again = this.#candidates();
      if (again.length !== fresh.length) quietUntil = Date.now() + settle;
      fresh = again;
    }
    const found: WorkerHandle[] = [];
    await Promise.all(
      fresh.map(async (ref) => {
        if (this.#seen.has(ref.key)) return;
        let info: WorkerInfo;
        try {
          info = await this.node.call<WorkerInfo>(ref, { op: 'info' } satisfies ControlRequest, {
            timeout: 3000,
          });
        } catch {
          return; // gone meanwhile
        }
        if (this.#seen.has(ref.key)) return;
        const handle = this.#handle(ref, info);
        this.#seen.add(ref.key);
        this.#workers.set(handle.id, handle);
        this.#unwatch.set(
          handle.id,
          this.node.watch(ref, () => {
            this.#workers.delete(handle.id);
            this.#seen.delete(ref.key);
            this.#unwatch.delete(handle.id);
          }),
        );
        if (this.#sink) await this.#sendLogs(handle).catch(() => {});
        found.push(handle);
      }),
    );
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Stop worker `worker` cleanly: it answers, shuts its node down (a Node worker process then
   * exits), and this resolves once its node is gone.
   * @throws {TroupeError} `TIMEOUT` when it is still reachable after `timeout` ms.
   */
  async terminateWorker(
    worker: string | WorkerHandle,
    options: { timeout?: number } = {},
  ): Promise<void> {
    const id = typeof worker === 'string' ? worker : worker.id;
    const ref =
      typeof worker === 'string'
        ? (this.#workers.get(id)?.ref ?? this.node.whereis<ControlRequest>(WORKER_PREFIX + id))
        : worker.ref;
    const timeout = options.timeout ?? 10_000;
    if (!ref) return; // not known: nothing to stop
    try {
      await this.node.call(ref, { op: 'terminate' } satisfies ControlRequest, { timeout });
    } catch (err) {
      if (!isWorkerLoss(err)) throw err;
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new TroupeError('TIMEOUT', `worker ${id} was still up ${timeout} ms after terminate`),
        );
      }, timeout);
      const off = this.node.monitorNode(id, (e) => {
        if (e.up) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Terminate every worker found so far (see {@link Master.terminateWorker}). */
  async terminateAllWorkers(options: { timeout?: number } = {}): Promise<void> {
    await Promise.all(this.workers().map((w) => this.terminateWorker(w, options)));
  }

  /**
   * Send the console output of every worker found (now and later) here. Lines arrive in order
   * per worker; by default they are printed as `[worker] line`.
   */
  async redirectLogsHere(options: RedirectOptions = {}): Promise<void> {
    this.#redirect = options;
    if (!this.#sink) {
      const onLog =
        options.onLog ??
        ((e: LogEntry) =>
          (e.stream === 'err' ? console.error : console.log)(`[${e.worker}] ${e.line}`));
      this.#sink = this.node.spawn(async (self) => {
        for (;;) {
          const m = (await self.receive()) as LogEntry;
          try {
            (this.#redirect?.onLog ?? onLog)(m);
          } catch (error) {
            this.node.events.emit('listenerError', { error });
          }
        }
      }) as ActorRef<LogEntry>;
    }
    await Promise.all(this.workers().map((w) => this.#sendLogs(w).catch(() => {})));
  }

  /** Stop collecting logs (workers print locally again) and forget the workers. */
  stop(): void {
    for (const off of this.#unwatch.values()) off();
    this.#unwatch.clear();
    if (this.#sink && this.node.isAlive(this.#sink)) this.node.kill(this.#sink);
    this.#sink = undefined;
  }

  #sendLogs(w: WorkerHandle): Promise<unknown> {
    return this.node.call(
      w.ref,
      {
        op: 'logs',
        to: this.#sink!,
        keepLocal: this.#redirect?.keepLocal ?? false,
      } satisfies ControlRequest,
      { timeout: 3000 },
    );
  }

  #candidates(): ActorRef<ControlRequest>[] {
    const out: ActorRef<ControlRequest>[] = [];
    for (const [name, ref] of this.node.registered()) {
      if (
        name.startsWith(WORKER_PREFIX) &&
        !this.#seen.has(ref.key) &&
        this.node.isReachable(ref.node)
      )
        out.push(ref as ActorRef<ControlRequest>);
    }
    return out;
  }

  #handle(ref: ActorRef<ControlRequest>, info: WorkerInfo): WorkerHandle {
    const node = this.node;
    return {
      id: ref.node,
      ref,
      info,
      async run<R>(fn: string, args: unknown, options: { timeout?: number } = {}): Promise<R> {
        const server = node.whereis(FUNCTION_SERVER_PREFIX + ref.node);
        if (!server) throw new TroupeError('NO_WORKER', `worker ${ref.node} serves no functions`);
        return unwrap(await node.call<Outcome<R>>(server, { op: 'run', fn, args }, options));
      },
      async spawn<R>(name: string, args?: unknown, options: { timeout?: number } = {}): Promise<R> {
        const timeout = options.timeout ?? 60_000;
        const boss = node.spawn(async (self) => {
          const child = await self.spawnOn(ref.node, name, args, { monitor: true });
          const down = await self.receive(downOf(child), { timeout });
          return { reason: down.reason, result: down.result };
        });
        const down = await node.waitDown(boss);
        if (down.reason !== 'normal')
          throw toTroupeError(
            down.reason instanceof Error ? down.reason : new Error(describe(down.reason)),
            'JOB_FAILED',
          );
        const { reason, result } = down.result as { reason: unknown; result: R };
        if (reason !== 'normal')
          throw new TroupeError(
            reason === 'noconnection' ? 'WORKER_LOST' : 'JOB_FAILED',
            `"${name}" on ${ref.node} ended with ${describe(reason)}`,
          );
        return result;
      },
    };
  }
}

function describe(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (reason && typeof reason === 'object' && 'message' in reason)
    return String((reason as { message: unknown }).message);
  try {
    return JSON.stringify(reason);
  } catch {
    return String(reason);
  }
}

/**
 * Find the workers available now (at least `minWorkers`, waiting up to `findTimeout`), run `fn`
 * with them and a {@link Master} (for `findWorkers`, `terminateWorker`, `terminateAllWorkers`,
 * `redirectLogsHere`), and resolve with what `fn` returns.
 * @example
 * await runMaster(node, { minWorkers: 4 }, async (workers, master) => {
 *   const sums = await Promise.all(workers.map((w) => w.run('sum', [1, 2, 3])));
 *   await master.terminateAllWorkers();
 * });
 */
export async function runMaster<T>(
  node: Node,
  options: MasterOptions,
  fn: (workers: WorkerHandle[], master: Master) => T | Promise<T>,
): Promise<T> {
  const master = new Master(node);
  try {
    const workers = await master.findWorkers({
      min: options.minWorkers ?? 1,
      timeout: options.findTimeout ?? 5000,
    });
    return await fn(workers, master);
  } finally {
    master.stop();
  }
}

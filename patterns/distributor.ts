/**
 * Job distribution (after simple-dist): a distributor spreads calls of named functions over the
 * function servers it finds in the cluster (least loaded first), retries a job whose worker dies
 * (at-least-once, unless the caller asks for at-most-once), and any node can call through it.
 * `workerFunction` wraps a call so it runs locally when no worker can serve it. Host-neutral.
 */
import { z } from 'zod';
import {
  behaviour,
  TroupeError,
  toTroupeError,
  type ActorRef,
  type AnyActorRef,
  type Node,
} from '../core/index.ts';
import {
  functionServers,
  isWorkerLoss,
  outcomeError,
  unwrap,
  type FunctionRequest,
  type Outcome,
  type ServerInfo,
} from './functions.ts';
import type {} from './errors.ts'; // the pattern error codes (NO_WORKER, …)

/**
 * How often a job may run. `at-least-once` (the default): a job whose worker dies before it
 * answers runs again on another worker, so it may run more than once (make it idempotent).
 * `at-most-once`: never retried; the caller gets `WORKER_LOST` and cannot know whether it ran.
 */
export type Delivery = 'at-least-once' | 'at-most-once';

/** Options of one job. */
export interface JobOptions {
  /** Give up (`TIMEOUT`) after this many ms, queueing included. @default the distributor's `jobTimeout` (30000) */
  timeout?: number;
  /** @default 'at-least-once' */
  delivery?: Delivery;
}

/** Anything that runs named functions on workers: a {@link Distributor} or a {@link distributorClient}. */
export interface JobRunner {
  /**
   * Run `fn(args)` on a worker; resolves with its (schema-checked) result.
   * @throws {TroupeError} `NO_WORKER` (no worker has `fn`), `WORKER_LOST` (its worker died and it was not
   * retried), `JOB_FAILED` (it threw, or its result failed the schema), `INVALID_MESSAGE` (bad args),
   * `TIMEOUT`, `MAILBOX_FULL` (queue full); from a client also `NO_ACTOR`/`NODE_DOWN` (no distributor).
   */
  run<R = unknown>(fn: string, args: unknown, options?: JobOptions): Promise<R>;
}

/** Options of {@link createDistributor}. */
export interface DistributorOptions {
  /** Register the distributor's actor under this name (`false`: do not register). @default 'distributor' */
  name?: string | false;
  /** Look for new workers this often (also on every `nodeUp`). @default 500 */
  scanInterval?: number;
  /** Default job timeout in ms. @default 30000 */
  jobTimeout?: number;
  /** Most runs of one at-least-once job. @default 3 */
  maxAttempts?: number;
  /** Most queued jobs; more are refused with `MAILBOX_FULL`. @default 10000 */
  maxQueue?: number;
  /** Keep a lost worker in the status this many ms. @default 30000 */
  keepLost?: number;
  /** Failures kept for the status. @default 20 */
  failuresKept?: number;
}

/** One job as the status shows it. */
export interface RunningJob {
  job: number;
  fn: string;
  since: number;
  attempt: number;
}

/** One worker as the status shows it. */
export interface WorkerStatus {
  node: string;
  ref: string;
  health: 'up' | 'lost';
  since: number;
  lostAt?: number;
  lostReason?: string;
  functions: string[];
  capacity: number;
  running: RunningJob[];
  completed: number;
  failed: number;
}

/** A failed or retried job, for the status. */
export interface FailureRecord {
  at: number;
  job: number;
  fn: string;
  worker?: string;
  code: string;
  message: string;
  /** The job was put back in the queue (at-least-once) rather than failed. */
  retried: boolean;
}

/** A snapshot of the distributor, for status pages. */
export interface DistributorStatus {
  node: string;
  name: string | null;
  at: number;
  workers: WorkerStatus[];
  queue: { length: number; byFunction: Record<string, number> };
  throughput: { perSecond: number; completed: number; failed: number; retried: number };
  recentFailures: FailureRecord[];
}

interface Job {
  id: number;
  fn: string;
  args: unknown;
  delivery: Delivery;
  attempts: number;
  deadline: number;
  done: boolean;
  timer: ReturnType<typeof setTimeout>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  since: number;
}

interface WorkerEntry {
  node: string;
  ref: ActorRef<FunctionRequest, Outcome>;
  functions: Set<string>;
  capacity: number;
  running: Map<number, Job>;
  completed: number;
  failed: number;
  health: 'up' | 'lost';
  since: number;
  lostAt?: number;
  lostReason?: string;
  lastAssigned: number;
  unwatch: () => void;
}

/** What remote callers send to the distributor's actor. */
export const DistributorRequest = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('run'),
    fn: z.string().max(200),
    args: z.unknown(),
    timeout: z.number().positive().max(86_400_000).optional(),
    delivery: z.enum(['at-least-once', 'at-most-once']).optional(),
  }),
  z.object({ op: z.literal('status') }),
]);
export type DistributorRequest = z.infer<typeof DistributorRequest>;

const THROUGHPUT_WINDOW_S = 5;

/**
 * A job distributor on `node`. Create it with {@link createDistributor}.
 */
export class Distributor implements JobRunner {
  readonly node: Node;
  /** The distributor's actor (registered under `options.name`): remote callers use it. */
  readonly ref: ActorRef<DistributorRequest>;
  readonly name: string | null;
  #o: Required<Omit<DistributorOptions, 'name'>>;
  #workers = new Map<string, WorkerEntry>();
  #probing = new Set<string>();
  #queue: Job[] = [];
  #nextJob = 1;
  #assignSeq = 0;
  #completed = 0;
  #failed = 0;
  #retried = 0;
  #buckets: { second: number; count: number }[] = [];
  #failures: FailureRecord[] = [];
  #listeners = new Set<() => void>();
  #scanTimer: ReturnType<typeof setInterval>;
  #offNodeUp: () => void;
  #stopped = false;

  constructor(node: Node, options: DistributorOptions = {}) {
    this.node = node;
    this.name = options.name === false ? null : (options.name ?? 'distributor');
    this.#o = {
      scanInterval: options.scanInterval ?? 500,
      jobTimeout: options.jobTimeout ?? 30_000,
      maxAttempts: options.maxAttempts ?? 3,
      maxQueue: options.maxQueue ?? 10_000,
      keepLost: options.keepLost ?? 30_000,
      failuresKept: options.failuresKept ?? 20,
    };
    this.ref = node.spawn(
      this.#facade(),
      this.name ? { name: this.name } : {},
    ) as ActorRef<DistributorRequest>;
    this.#scanTimer = setInterval(() => this.scan(), this.#o.scanInterval);
    // A new node's registry entries arrive just after its link: look again shortly after.
    this.#offNodeUp = node.events.on('nodeUp', () => setTimeout(() => this.scan(), 50));
    // The actor ends with the node (shutdown) or when killed: stop with it.
    node.watch(this.ref, () => this.stop());
    this.scan();
  }

  /** Look for function servers now (it also happens every `scanInterval`). */
  scan(): void {
    if (this.#stopped) return;
    const now = Date.now();
    for (const [key, w] of this.#workers) {
      if (w.health === 'lost' && now - (w.lostAt ?? now) > this.#o.keepLost)
        this.#workers.delete(key);
    }
    for (const ref of functionServers(this.node).values()) {
      const key = ref.key;
      const known = this.#workers.get(key);
      if (
        (known && known.health === 'up') ||
        this.#probing.has(key) ||
        !this.node.isReachable(ref.node)
      )
        continue;
      this.#probing.add(key);
      this.node.call<ServerInfo>(ref, { op: 'describe' }, { timeout: 3000 }).then(
        (info) => {
          this.#probing.delete(key);
          if (!this.#stopped) this.#add(ref, info);
        },
        () => this.#probing.delete(key),
      );
    }
  }

  /** Resolve once at least `count` workers (with `fn`, if given) are up; reject with `TIMEOUT` after `ms`. */
  async waitForWorkers(count = 1, ms = 10_000, fn?: string): Promise<void> {
    const end = Date.now() + ms;
    while (this.#live(fn).length < count) {
      if (Date.now() > end)
        throw new TroupeError(
          'TIMEOUT',
          `fewer than ${count} worker(s)${fn ? ` with "${fn}"` : ''} after ${ms} ms`,
        );
      this.scan();
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  run<R = unknown>(fn: string, args: unknown, options: JobOptions = {}): Promise<R> {
    if (this.#stopped)
      return Promise.reject(new TroupeError('SHUTDOWN', 'the distributor is stopped'));
    if (this.#live(fn).length === 0) return Promise.reject(this.#noWorker(fn));
    if (this.#queue.length >= this.#o.maxQueue)
      return Promise.reject(
        new TroupeError(
          'MAILBOX_FULL',
          `the distributor's queue is full (${this.#o.maxQueue} jobs)`,
        ),
      );
    const timeout = options.timeout ?? this.#o.jobTimeout;
    return new Promise<R>((resolve, reject) => {
      const job: Job = {
        id: this.#nextJob++,
        fn,
        args,
        delivery: options.delivery ?? 'at-least-once',
        attempts: 0,
        deadline: Date.now() + timeout,
        done: false,
        timer: setTimeout(
          () =>
            this.#fail(
              job,
              new TroupeError(
                'TIMEOUT',
                `job ${job.id} ("${fn}") did not finish within ${timeout} ms`,
              ),
            ),
          timeout,
        ),
        resolve: resolve as (v: unknown) => void,
        reject,
        since: Date.now(),
      };
      this.#queue.push(job);
      this.#pump();
    });
  }

  /** A snapshot for status pages. */
  status(): DistributorStatus {
    const byFunction: Record<string, number> = {};
    for (const j of this.#queue) byFunction[j.fn] = (byFunction[j.fn] ?? 0) + 1;
    return {
      node: this.node.id,
      name: this.name,
      at: Date.now(),
      workers: [...this.#workers.values()].map((w) => ({
        node: w.node,
        ref: w.ref.key,
        health: w.health,
        since: w.since,
        ...(w.lostAt === undefined ? {} : { lostAt: w.lostAt, lostReason: w.lostReason }),
        functions: [...w.functions],
        capacity: w.capacity,
        running: [...w.running.values()].map((j) => ({
          job: j.id,
          fn: j.fn,
          since: j.since,
          attempt: j.attempts,
        })),
        completed: w.completed,
        failed: w.failed,
      })),
      queue: { length: this.#queue.length, byFunction },
      throughput: {
        perSecond: this.#perSecond(),
        completed: this.#completed,
        failed: this.#failed,
        retried: this.#retried,
      },
      recentFailures: [...this.#failures],
    };
  }

  /** Call `fn` whenever the status changes (workers, jobs). Returns an unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Stop: queued and running jobs reject with `SHUTDOWN`, the actor exits, scanning stops. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#scanTimer);
    this.#offNodeUp();
    for (const w of this.#workers.values()) {
      w.unwatch();
      for (const j of w.running.values())
        this.#fail(j, new TroupeError('SHUTDOWN', 'the distributor stopped'));
    }
    for (const j of [...this.#queue])
      this.#fail(j, new TroupeError('SHUTDOWN', 'the distributor stopped'));
    this.#queue.length = 0;
    if (this.node.isAlive(this.ref)) this.node.exit(this.ref, 'shutdown');
  }

  // -------------------------------------------------------------------------------------------

  #facade() {
    return behaviour({
      schema: DistributorRequest,
      handle: (m, _s: undefined, ctx) => {
        if (m.op === 'status') {
          ctx.reply(this.status());
          return;
        }
        const answer = ctx.deferReply();
        this.run(m.fn, m.args, { timeout: m.timeout, delivery: m.delivery }).then(
          (value) => answer({ ok: true, value } satisfies Outcome),
          (err: unknown) => {
            const e = toTroupeError(err, 'JOB_FAILED');
            answer({
              ok: false,
              error:
                e.details === undefined
                  ? { code: e.code, message: e.message }
                  : { code: e.code, message: e.message, details: e.details },
            } satisfies Outcome);
          },
        );
      },
    });
  }

  #add(ref: ActorRef<FunctionRequest, Outcome>, info: ServerInfo): void {
    const key = ref.key;
    const old = this.#workers.get(key);
    if (old?.health === 'up') return;
    old?.unwatch();
    const entry: WorkerEntry = {
      node: ref.node,
      ref,
      functions: new Set(info.functions),
      capacity: Math.max(1, Math.min(1000, Math.floor(info.concurrency) || 1)),
      running: new Map(),
      completed: 0,
      failed: 0,
      health: 'up',
      since: Date.now(),
      lastAssigned: 0,
      unwatch: () => {},
    };
    this.#workers.set(key, entry);
    entry.unwatch = this.node.watch(ref, (down) =>
      this.#lost(entry, typeof down.reason === 'string' ? down.reason : 'crashed'),
    );
    this.#changed();
    this.#pump();
  }

  #lost(w: WorkerEntry, reason: string): void {
    if (w.health === 'lost') return;
    w.health = 'lost';
    w.lostAt = Date.now();
    w.lostReason = reason;
    w.unwatch();
    this.#changed();
    // Its running jobs settle through their calls (NODE_DOWN / ACTOR_EXITED); queued jobs whose
    // function no live worker has any more fail now.
    this.#pump();
  }

  #live(fn?: string): WorkerEntry[] {
    return [...this.#workers.values()].filter(
      (w) => w.health === 'up' && (fn === undefined || w.functions.has(fn)),
    );
  }

  #noWorker(fn: string): TroupeError {
    const have = new Set<string>();
    for (const w of this.#live()) for (const f of w.functions) have.add(f);
    return new TroupeError(
      'NO_WORKER',
      `no worker can run "${fn}" now (workers up: ${this.#live().length}; functions: ${[...have].join(', ') || 'none'})`,
    );
  }

  /** The least loaded live worker with `fn` and a free slot (ties: the one idle longest). */
  #pick(fn: string): WorkerEntry | undefined {
    let best: WorkerEntry | undefined;
    let bestLoad = Infinity;
    for (const w of this.#workers.values()) {
      if (w.health !== 'up' || !w.functions.has(fn) || w.running.size >= w.capacity) continue;
      const load = w.running.size / w.capacity;
      if (load < bestLoad || (load === bestLoad && w.lastAssigned < best!.lastAssigned)) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  #pump(): void {
    const q = this.#queue;
    for (let i = 0; i < q.length; ) {
      const job = q[i];
      if (job.done) {
        q.splice(i, 1);
        continue;
      }
      if (this.#live(job.fn).length === 0) {
        q.splice(i, 1);
        this.#fail(job, this.#noWorker(job.fn));
        continue;
      }
      const w = this.#pick(job.fn);
      if (!w) {
        i++;
        continue;
      }
      q.splice(i, 1);
      this.#dispatch(job, w);
    }
  }

  #dispatch(job: Job, w: WorkerEntry): void {
    job.attempts++;
    job.since = Date.now();
    w.running.set(job.id, job);
    w.lastAssigned = ++this.#assignSeq;
    this.#changed();
    const timeout = Math.max(1, job.deadline - Date.now());
    this.node.call<Outcome>(w.ref, { op: 'run', fn: job.fn, args: job.args }, { timeout }).then(
      (o) => {
        w.running.delete(job.id);
        if (o.ok) {
          w.completed++;
          this.#succeed(job, o.value);
        } else if (o.error.code === 'NO_WORKER') {
          // The worker no longer has this function: never send it there again.
          w.functions.delete(job.fn);
          this.#retryOrFail(job, w, outcomeError(o));
        } else {
          w.failed++;
          this.#fail(job, outcomeError(o), w);
        }
        this.#pump();
      },
      (err: unknown) => {
        w.running.delete(job.id);
        const e = toTroupeError(err);
        if (isWorkerLoss(e)) {
          this.#lost(w, e.code === 'NODE_DOWN' ? 'noconnection' : e.code.toLowerCase());
          this.#retryOrFail(job, w, e);
        } else {
          w.failed++;
          this.#fail(job, e, w);
        }
        this.#pump();
      },
    );
  }

  #retryOrFail(job: Job, w: WorkerEntry, cause: TroupeError): void {
    if (job.done) return;
    const again =
      job.delivery === 'at-least-once' &&
      job.attempts < this.#o.maxAttempts &&
      Date.now() < job.deadline;
    this.#record(job, w, cause, again);
    if (again) {
      this.#retried++;
      this.#queue.unshift(job);
      return;
    }
    if (cause.code === 'NO_WORKER') {
      this.#fail(job, cause, undefined, false);
      return;
    }
    const why =
      job.delivery === 'at-most-once'
        ? 'at-most-once: not retried'
        : `gave up after ${job.attempts} attempt(s)`;
    this.#fail(
      job,
      new TroupeError(
        'WORKER_LOST',
        `worker ${w.node} was lost while running job ${job.id} ("${job.fn}"); ${why}`,
        { cause },
      ),
      undefined,
      false,
    );
  }

  #succeed(job: Job, value: unknown): void {
    if (job.done) return;
    job.done = true;
    clearTimeout(job.timer);
    this.#completed++;
    const second = Math.floor(Date.now() / 1000);
    const last = this.#buckets[this.#buckets.length - 1];
    if (last?.second === second) last.count++;
    else {
      this.#buckets.push({ second, count: 1 });
      if (this.#buckets.length > THROUGHPUT_WINDOW_S + 1) this.#buckets.shift();
    }
    this.#changed();
    job.resolve(value);
  }

  #fail(job: Job, err: TroupeError, w?: WorkerEntry, record = true): void {
    if (job.done) return;
    job.done = true;
    clearTimeout(job.timer);
    this.#failed++;
    if (record) this.#record(job, w, err, false);
    const i = this.#queue.indexOf(job);
    if (i >= 0) this.#queue.splice(i, 1);
    this.#changed();
    job.reject(err);
  }

  #record(job: Job, w: WorkerEntry | undefined, err: TroupeError, retried: boolean): void {
    this.#failures.push({
      at: Date.now(),
      job: job.id,
      fn: job.fn,
      ...(w ? { worker: w.node } : {}),
      code: err.code,
      message: err.message,
      retried,
    });
    if (this.#failures.length > this.#o.failuresKept) this.#failures.shift();
  }

  /** Jobs completed per second over the last full seconds. */
  #perSecond(): number {
    const now = Math.floor(Date.now() / 1000);
    let n = 0;
    for (const b of this.#buckets)
      if (b.second < now && b.second >= now - THROUGHPUT_WINDOW_S) n += b.count;
    return n / THROUGHPUT_WINDOW_S;
  }

  #changed(): void {
    for (const fn of [...this.#listeners]) {
      try {
        fn();
      } catch (error) {
        this.node.events.emit('listenerError', { error });
      }
    }
  }
}

/**
 * Start a distributor on `node`: it finds the function servers of the cluster (nodes that called
 * `serveFunctions`, or `startWorker` with functions) and runs jobs on them, least loaded first.
 * Its actor is registered as `distributor` so other nodes can call through it
 * ({@link distributorClient}).
 * @example
 * const dist = createDistributor(node);
 * const fib = workerFunction(dist, 'fib', (n: number) => localFib(n));
 * await fib(30);
 */
export function createDistributor(node: Node, options: DistributorOptions = {}): Distributor {
  return new Distributor(node, options);
}

/** A {@link JobRunner} that calls a distributor on another node (by registered name or ref). */
export interface DistributorClient extends JobRunner {
  /** The distributor's status snapshot. */
  status(options?: { timeout?: number }): Promise<DistributorStatus>;
}

/** Call a distributor from any node of the cluster, by its registered name (or ref). */
export function distributorClient(
  node: Node,
  target: string | AnyActorRef = 'distributor',
  defaults: { timeout?: number } = {},
): DistributorClient {
  return {
    async run<R>(fn: string, args: unknown, options: JobOptions = {}): Promise<R> {
      const timeout = options.timeout ?? defaults.timeout ?? 30_000;
      const request: DistributorRequest = {
        op: 'run',
        fn,
        args,
        timeout,
        delivery: options.delivery,
      };
      // The distributor answers TIMEOUT itself at `timeout`; the grace lets that answer arrive.
      const o = await node.call<Outcome<R>>(target, request, { timeout: timeout + 2000 });
      return unwrap(o);
    },
    status(options = {}) {
      return node.call<DistributorStatus>(target, { op: 'status' } satisfies DistributorRequest, {
        timeout: options.timeout ?? 5000,
      });
    },
  };
}

/** Options of {@link workerFunction}. */
export interface WorkerFunctionOptions extends JobOptions {
  /** After a remote call timed out, stay local for this many ms before trying remote again. @default 1000 */
  retryRemoteAfter?: number;
  /** Called each time the local fallback runs instead, with the reason. */
  onFallback?: (reason: TroupeError) => void;
}

/** Codes that mean "no worker could serve it", so the local fallback runs. */
const FALLBACK_CODES = new Set([
  'NO_WORKER',
  'WORKER_LOST',
  'NO_ACTOR',
  'NODE_DOWN',
  'TIMEOUT',
  'TRANSPORT_CLOSED',
  'MAILBOX_FULL',
  'SHUTDOWN',
  'UNKNOWN_BEHAVIOUR',
]);

/** A function made by {@link workerFunction}, with counts of where its calls ran. */
export interface RemoteOrLocal<A, R> {
  (args: A): Promise<R>;
  readonly stats: { remote: number; local: number };
}

/**
 * A function that runs `name` on a worker through `runner` while one can serve it, and runs
 * `localFallback` when none can — no worker, the function missing everywhere, workers dead, the
 * distributor unreachable or not answering within `timeout` — without an error and without
 * hanging. Each call tries remote first again, so it goes back to remote when a worker returns
 * (after a timeout it waits `retryRemoteAfter` ms first).
 *
 * Errors of the job itself (`JOB_FAILED`: it threw, `INVALID_MESSAGE`: bad arguments) are thrown,
 * not hidden by the fallback. With `delivery: 'at-most-once'` a job whose worker died is not run
 * again locally either (`WORKER_LOST`, or `TIMEOUT`, is thrown): it may have run.
 * @example
 * const fib = workerFunction(dist, 'fib', (n: number) => fibLocal(n), { timeout: 5000 });
 * await fib(30); // on a worker if any, else here
 */
export function workerFunction<A, R>(
  runner: JobRunner,
  name: string,
  localFallback: (args: A) => R | Promise<R>,
  options: WorkerFunctionOptions = {},
): RemoteOrLocal<A, Awaited<R>> {
  const stats = { remote: 0, local: 0 };
  let localUntil = 0;
  const atMostOnce = options.delivery === 'at-most-once';
  const local = async (args: A, reason: TroupeError): Promise<Awaited<R>> => {
    stats.local++;
    options.onFallback?.(reason);
    return await localFallback(args);
  };
  const f = async (args: A): Promise<Awaited<R>> => {
    if (Date.now() < localUntil)
      return local(args, new TroupeError('TIMEOUT', 'the last remote call timed out'));
    try {
      const value = await runner.run<Awaited<R>>(name, args, {
        timeout: options.timeout,
        delivery: options.delivery,
      });
      stats.remote++;
      return value;
    } catch (err) {
      const e = toTroupeError(err);
      if (
        !FALLBACK_CODES.has(e.code) ||
        (atMostOnce && (e.code === 'WORKER_LOST' || e.code === 'TIMEOUT'))
      )
        throw e;
      if (e.code === 'TIMEOUT') localUntil = Date.now() + (options.retryRemoteAfter ?? 1000);
      return local(args, e);
    }
  };
  return Object.assign(f, { stats });
}

/**
 * Function servers: a node exposes named functions, each with zod schemas for its argument and
 * its result, through one actor. The distributor, `parallelMap` and the master/worker helpers
 * all run work through it. Host-neutral: only core and zod.
 */
import { z } from 'zod';
import {
  behaviour,
  TroupeError,
  toTroupeError,
  type ActorRef,
  type AnyActorRef,
  type ErrorCode,
  type Node,
} from '../core/index.ts';
import type {} from './errors.ts'; // the pattern error codes (NO_WORKER, …)

/** What a running job knows about itself (the second argument of a worker function). */
export interface JobContext {
  /**
   * Aborts when the job's caller cancels it (an aborted `call`, `parallelMap` or distributor
   * job), its server goes away or the caller's node is lost: stop working and return (what you
   * return is dropped).
   */
  signal: AbortSignal;
}

/** A function a worker exposes: schemas for its argument and result, and the code. */
export interface WorkerFunction<A = any, R = any> {
  args: z.ZodType<A>;
  result: z.ZodType<R>;
  run(args: A, job: JobContext): R | Promise<R>;
}

/** Named functions, as a worker exposes them. */
export type FunctionTable = Record<string, WorkerFunction>;

/**
 * Define a worker function with its types inferred from the schemas.
 * @example
 * const fib = defineFunction({ args: z.number().int().min(0).max(90), result: z.number(), run: (n) => fibOf(n) })
 */
export function defineFunction<AS extends z.ZodType, RS extends z.ZodType>(def: {
  args: AS;
  result: RS;
  run: (args: z.output<AS>, job: JobContext) => z.input<RS> | Promise<z.input<RS>>;
}): WorkerFunction<z.output<AS>, z.output<RS>> {
  return def as unknown as WorkerFunction<z.output<AS>, z.output<RS>>;
}

/** Registry prefix of function servers: `troupe.fn:<node id>`. */
export const FUNCTION_SERVER_PREFIX = 'troupe.fn:';
/** Name of the behaviour that starts a function server (for `node.spawn(id, FUNCTION_SERVER_BEHAVIOUR)`). */
export const FUNCTION_SERVER_BEHAVIOUR = 'troupe.functions';

/** What a function server answers: plain data, so it crosses any transport. */
export type Outcome<R = unknown> =
  | { ok: true; value: R }
  | { ok: false; error: { code: ErrorCode; message: string; details?: unknown } };

/** A function server's description of itself. */
export interface ServerInfo {
  node: string;
  functions: string[];
  /** Jobs it is willing to hold at once (the distributor keeps at most this many in flight). */
  concurrency: number;
  /** Jobs running on it now. */
  running: number;
}

/** The messages a function server takes (all are calls). */
export const FunctionRequest = z.discriminatedUnion('op', [
  z.object({ op: z.literal('describe') }),
  z.object({ op: z.literal('run'), fn: z.string().max(200), args: z.unknown() }),
  z.object({ op: z.literal('map'), fn: z.string().max(200), items: z.array(z.unknown()) }),
  z.object({
    op: z.literal('mapSource'),
    src: z.string().max(200_000),
    items: z.array(z.unknown()),
  }),
]);
export type FunctionRequest = z.infer<typeof FunctionRequest>;

/** Options of {@link serveFunctions}. */
export interface ServeFunctionsOptions {
  /** Jobs this server advertises it can hold at once. @default 2 */
  concurrency?: number;
  /**
   * Accept functions sent as source text (`parallelMap` with a plain function). Only for nodes
   * that trust every peer with code execution, like your own worker threads. @default false
   */
  allowSource?: boolean;
  /** Register the server as `troupe.fn:<node id>` so distributors and pools find it. @default true */
  register?: boolean;
}

/** A running function server. */
export interface FunctionServer {
  readonly ref: ActorRef<FunctionRequest, Outcome>;
  /** Jobs running now (name and start time), for status views. */
  running(): { fn: string; since: number }[];
}

const fail = (code: ErrorCode, message: string, details?: unknown): Outcome<never> => ({
  ok: false,
  error: details === undefined ? { code, message } : { code, message, details },
});

/**
 * Serve `functions` on `node` through one actor (registered as `troupe.fn:<node id>` unless
 * `register: false`). Each job runs in its own macrotask, so a node busy with synchronous jobs
 * still answers heartbeats between them.
 * @example
 * serveFunctions(node, { fib: defineFunction({ args: z.number(), result: z.number(), run: fib }) })
 */
export function serveFunctions(
  node: Node,
  functions: FunctionTable,
  options: ServeFunctionsOptions = {},
): FunctionServer {
  const { ref, running } = startServer(node, functions, options, (b) => node.spawn(b));
  if (options.register ?? true) node.register(FUNCTION_SERVER_PREFIX + node.id, ref);
  return { ref, running };
}

/**
 * Define the behaviour `troupe.functions` on `node`, so another node can start a function server
 * here with `node.spawn(thisId, 'troupe.functions')` and hold its ref without any name (how
 * thread pools reach their threads).
 */
export function defineFunctionServer(
  node: Node,
  functions: FunctionTable,
  options: ServeFunctionsOptions = {},
): void {
  node.define(
    FUNCTION_SERVER_BEHAVIOUR,
    undefined,
    serverBehaviour(node, functions, options, new Map()),
  );
}

function startServer(
  node: Node,
  functions: FunctionTable,
  options: ServeFunctionsOptions,
  spawn: (b: ReturnType<typeof serverBehaviour>) => AnyActorRef,
): FunctionServer {
  const jobs = new Map<number, { fn: string; since: number }>();
  const ref = spawn(serverBehaviour(node, functions, options, jobs)) as ActorRef<
    FunctionRequest,
    Outcome
  >;
  return { ref, running: () => [...jobs.values()] };
}

function serverBehaviour(
  node: Node,
  functions: FunctionTable,
  options: ServeFunctionsOptions,
  jobs: Map<number, { fn: string; since: number }>,
) {
  const concurrency = options.concurrency ?? 2;
  const compiled = new Map<string, (x: unknown, job: JobContext) => unknown>();
  let nextJob = 1;

  /**
   * Run `work` in its own macrotask and answer with its outcome. `signal` (the call's) aborts
   * when the caller cancels: a job that has not started yet never does; one running sees it.
   */
  const later = (
    fn: string,
    answer: (v: unknown) => boolean,
    signal: AbortSignal,
    work: () => Promise<Outcome>,
  ): void => {
    const id = nextJob++;
    jobs.set(id, { fn, since: Date.now() });
    macrotask(() => {
      if (signal.aborted) {
        jobs.delete(id);
        return;
      }
      work()
        .catch((err: unknown) => fail('JOB_FAILED', describe(err)))
        .then((outcome) => {
          jobs.delete(id);
          answer(outcome);
        });
    });
  };

  const runOne = async (
    name: string,
    f: WorkerFunction,
    arg: unknown,
    signal: AbortSignal,
  ): Promise<Outcome> => {
    const a = f.args.safeParse(arg);
    if (!a.success)
      return fail('INVALID_MESSAGE', `invalid arguments for "${name}"`, a.error.issues);
    let value: unknown;
    try {
      value = await f.run(a.data, { signal });
    } catch (err) {
      return fail('JOB_FAILED', `"${name}" failed on ${node.id}: ${describe(err)}`);
    }
    const r = f.result.safeParse(value);
    if (!r.success)
      return fail(
        'JOB_FAILED',
        `"${name}" on ${node.id} returned a value its result schema rejects`,
        r.error.issues,
      );
    return { ok: true, value: r.data };
  };

  return behaviour({
    schema: FunctionRequest,
    handle: (m, _s: undefined, ctx) => {
      if (m.op === 'describe') {
        ctx.reply({
          node: node.id,
          functions: Object.keys(functions),
          concurrency,
          running: jobs.size,
        } satisfies ServerInfo);
        return;
      }
      // Every other request is a call: its signal aborts when the caller cancels it.
      const signal = ctx.signal!;
      if (m.op === 'mapSource') {
        if (!options.allowSource) {
          ctx.reply(
            fail(
              'UNKNOWN_BEHAVIOUR',
              `node ${node.id} does not run functions sent as source (allowSource is off)`,
            ),
          );
          return;
        }
        let f: (x: unknown, job: JobContext) => unknown;
        try {
          f = compile(compiled, m.src);
        } catch (err) {
          ctx.reply(fail('INVALID_MESSAGE', `cannot compile the function: ${describe(err)}`));
          return;
        }
        const items = m.items;
        later('(source)', ctx.deferReply(), signal, async () => {
          const out: unknown[] = new Array(items.length);
          const pace = pacer();
          for (let i = 0; i < items.length; i++) {
            if (signal.aborted) return cancelled();
            out[i] = await f(items[i], { signal });
            await pace();
          }
          return { ok: true, value: out };
        });
        return;
      }
      const f = Object.hasOwn(functions, m.fn) ? functions[m.fn] : undefined;
      if (!f) {
        ctx.reply(
          fail(
            'NO_WORKER',
            `node ${node.id} has no function "${m.fn}" (it has: ${Object.keys(functions).join(', ') || 'none'})`,
          ),
        );
        return;
      }
      if (m.op === 'run') {
        const args = m.args;
        later(m.fn, ctx.deferReply(), signal, () => runOne(m.fn, f, args, signal));
        return;
      }
      const items = m.items;
      later(m.fn, ctx.deferReply(), signal, async () => {
        const out: unknown[] = new Array(items.length);
        const pace = pacer();
        for (let i = 0; i < items.length; i++) {
          if (signal.aborted) return cancelled();
          const o = await runOne(m.fn, f, items[i], signal);
          if (!o.ok) return o;
          out[i] = o.value;
          await pace();
        }
        return { ok: true, value: out };
      });
    },
  });
}

/**
 * Run `fn` in a macrotask of its own, without the clamp of nested `setTimeout(0)` (at least 1 ms
 * in Node, 4 ms in browsers after a few levels: a pool of short jobs would spend more time
 * waiting than working): `setImmediate` where the host has it (Node), else a `MessageChannel`
 * (browsers, workers), else `setTimeout`.
 */
export const macrotask: (fn: () => void) => void = (() => {
  const g = globalThis as {
    setImmediate?: (fn: () => void) => unknown;
    MessageChannel?: new () => {
      port1: { onmessage: unknown };
      port2: { postMessage(v: unknown): void };
    };
  };
  if (typeof g.setImmediate === 'function') {
    const setImmediate = g.setImmediate;
    return (fn) => void setImmediate(fn);
  }
  if (typeof g.MessageChannel === 'function') {
    const queue: (() => void)[] = [];
    let channel: InstanceType<NonNullable<typeof g.MessageChannel>> | undefined;
    return (fn) => {
      if (channel === undefined) {
        channel = new g.MessageChannel!();
        channel.port1.onmessage = () => queue.shift()?.();
      }
      queue.push(fn);
      channel.port2.postMessage(0);
    };
  }
  return (fn) => void setTimeout(fn, 0);
})();

/**
 * A chunk of synchronous work must not starve the node's timers (heartbeats: a peer declares a
 * silent node down): yield a macrotask every 50 ms of work.
 */
function pacer(): () => Promise<void> | undefined {
  let last = Date.now();
  return () => {
    const now = Date.now();
    if (now - last < 50) return undefined;
    last = now;
    return new Promise((r) => setTimeout(r, 0));
  };
}

/** The outcome of a job its caller cancelled (nobody receives it: the call is dropped). */
const cancelled = (): Outcome<never> => fail('ABORTED', 'the job was cancelled');

/** Compile a function from its source text (cached). */
function compile(
  cache: Map<string, (x: unknown, job: JobContext) => unknown>,
  src: string,
): (x: unknown, job: JobContext) => unknown {
  let f = cache.get(src);
  if (f) return f;
  // Bundlers that keep function names (esbuild, so tsx) insert `__name(fn, "name")` calls into
  // function bodies: give the compiled function a harmless one.
  const made = new Function('__name', `"use strict"; return (${src});`)(
    (fn: unknown) => fn,
  ) as unknown;
  if (typeof made !== 'function') throw new TypeError('the source is not a function');
  f = made as (x: unknown, job: JobContext) => unknown;
  if (cache.size >= 64) cache.delete(cache.keys().next().value!);
  cache.set(src, f);
  return f;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Turn a function server's (or distributor's) failed outcome into a {@link TroupeError}. */
export function outcomeError(o: Extract<Outcome, { ok: false }>): TroupeError {
  return new TroupeError(
    o.error.code,
    o.error.message,
    o.error.details === undefined ? undefined : { details: o.error.details },
  );
}

/** Unwrap an outcome: its value, or throw its error. */
export function unwrap<R>(o: Outcome<R>): R {
  if (o.ok) return o.value;
  throw outcomeError(o);
}

/** The function servers this node sees in the cluster registry, by node id. */
export function functionServers(node: Node): Map<string, ActorRef<FunctionRequest, Outcome>> {
  const out = new Map<string, ActorRef<FunctionRequest, Outcome>>();
  for (const [name, ref] of node.registered()) {
    if (name.startsWith(FUNCTION_SERVER_PREFIX))
      out.set(ref.node, ref as ActorRef<FunctionRequest, Outcome>);
  }
  return out;
}

/** Errors that mean "this worker is gone" (the job may be retried elsewhere), not "the job failed". */
export function isWorkerLoss(err: unknown): boolean {
  const code = toTroupeError(err).code;
  return (
    code === 'NODE_DOWN' ||
    code === 'ACTOR_EXITED' ||
    code === 'NO_ACTOR' ||
    code === 'TRANSPORT_CLOSED'
  );
}

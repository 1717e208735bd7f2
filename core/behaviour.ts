import type { z } from 'zod';
import type { ActorContext } from './actor-context.ts';
import type { AnyActorRef } from './actor-ref.ts';
import { TroupeError } from './errors.ts';
import type { ExitReason } from './exit-reason.ts';
import type { Reply, SystemMessage } from './messages.ts';

/** A process-style actor: an async function that receives with `self.receive`. */
export type ProcessFn<M> = (self: ActorContext<M>, args?: any) => unknown;

declare const inputType: unique symbol;
declare const replyType: unique symbol;

/**
 * A gen_server-style actor: `init(args)` gives the first state, `handle(msg, state, ctx)` the
 * next one. Answer a call with `ctx.reply(value)` or by returning `reply(value, state)`; a call
 * answered neither way gets `undefined` (use `ctx.deferReply()` to answer later).
 * Returning `undefined` keeps the state.
 *
 * `R` is the reply type its refs' calls resolve with: inferred from the values `handle` passes
 * to `reply(value, state)`, or declared with `behaviour<M, S, A, R>(…)` when it answers with
 * `ctx.reply`. Plain objects (untyped JavaScript) work unchanged: `R` is then `unknown`.
 */
export interface Behaviour<M, S = unknown, A = unknown, I = M, R = unknown> {
  /** Type-only: what senders may send (the schema's input type; `M` is what `handle` sees). */
  readonly [inputType]?: (i: I) => void;
  /** Type-only: what calls resolve with. */
  readonly [replyType]?: () => R;
  /** Messages are validated against this schema when they arrive. */
  schema?: z.ZodType<M>;
  init?(args: A, ctx: ActorContext<M>): S | Promise<S>;
  handle(
    msg: M,
    state: S,
    ctx: ActorContext<M>,
  ): S | Reply<S, R> | void | Promise<S | Reply<S, R> | void>;
  /** System messages (DOWN, EXIT when trapping, NAME_LOST). Without it they are dead letters. */
  info?(msg: SystemMessage, state: S, ctx: ActorContext<M>): S | void | Promise<S | void>;
  /** Called once when the actor ends, with the reason. */
  terminate?(reason: ExitReason, state: S): void;
}

/** What a behaviour's `handle` may return: the next state, a {@link Reply}, nothing, or a promise of one. */
export type HandleResult<S, R = unknown> = S | Reply<S, R> | void | Promise<S | Reply<S, R> | void>;

/** The values of the {@link Reply}s in a handler's result type `H` (never when there are none). */
type RepliesIn<H> =
  H extends Reply<unknown, infer V> ? V : H extends PromiseLike<infer P> ? RepliesIn<P> : never;

/** The reply type of a behaviour: `R` when declared, else what its `handle` replies with. */
export type ReplyTypeOf<R, H> = unknown extends R
  ? [RepliesIn<H>] extends [never]
    ? unknown
    : RepliesIn<H>
  : R;

/** A behaviour as `behaviour()` takes it: `H` is what its `handle` returns (for the reply type). */
type BehaviourDef<M, S, A, H> = Omit<Behaviour<M, S, A>, 'handle' | 'schema'> & {
  handle(msg: M, state: S, ctx: ActorContext<M>): H;
};

/**
 * Define a behaviour with its types inferred: the message type from the schema, the state from
 * `init`, the reply type from the values `handle` returns with `reply(value, state)` (their
 * union), unless `R` is given (for a behaviour that answers with `ctx.reply`).
 * @example
 * const counter = behaviour({
 *   schema: z.enum(['inc', 'get']),
 *   init: () => 0,
 *   handle: (m, n) => (m === 'inc' ? n + 1 : reply(n, n)),
 * })
 * const ref = node.spawn(counter) // ActorRef<'inc' | 'get', number>
 */
export function behaviour<
  Sch extends z.ZodType,
  S,
  A = undefined,
  R = unknown,
  H extends HandleResult<S> = HandleResult<S>,
>(
  b: BehaviourDef<z.output<Sch>, S, A, H> & { schema: Sch },
): Behaviour<z.output<Sch>, S, A, z.input<Sch>, ReplyTypeOf<R, H>>;
export function behaviour<
  M,
  S,
  A = undefined,
  R = unknown,
  H extends HandleResult<S> = HandleResult<S>,
>(
  b: BehaviourDef<M, S, A, H> & { schema?: z.ZodType<M> },
): Behaviour<M, S, A, M, ReplyTypeOf<R, H>>;
export function behaviour(b: Behaviour<any, any, any>): Behaviour<any, any, any> {
  return b;
}

/** Options of `node.spawn`. */
export interface SpawnOptions {
  /** Register the actor under this name (cluster-wide). @throws `NAME_TAKEN` if taken. */
  name?: string;
  /** Validate arriving messages with this schema (a behaviour's own schema is the default). */
  schema?: z.ZodType;
  /** Link the new actor with this ref before it runs. */
  link?: AnyActorRef;
  /** Let this (local) actor monitor the new one from before it runs. */
  monitor?: AnyActorRef;
  /** Start with exits trapped. */
  trapExit?: boolean;
  /** Arguments for the behaviour's `init` or the process function's second parameter. */
  args?: unknown;
  /** Mailbox bound for this actor. @default the node's `maxMailbox` */
  maxMailbox?: number;
}

/** Options of `ctx.spawn`: link/monitor refer to the spawning actor. */
export interface ChildSpawnOptions extends Omit<SpawnOptions, 'link' | 'monitor'> {
  link?: boolean;
  monitor?: boolean;
}

/** Options of a remote spawn by behaviour name. */
export interface RemoteSpawnOptions {
  /** Link the new actor to this (local) actor. */
  link?: AnyActorRef;
  /** Let this (local) actor monitor the new one. */
  monitor?: AnyActorRef;
  /** Timeout of the spawn request in ms. @default the node's `callTimeout` */
  timeout?: number;
}

/**
 * A node's table of named behaviours: what other nodes may spawn on it by name
 * (`node.define`, then `node.spawn(nodeId, name, args)`). @internal
 */
export class BehaviourTable {
  readonly #nodeId: string;
  #defs = new Map<
    string,
    { schema: z.ZodType | undefined; impl: Behaviour<any, any, any> | ProcessFn<any> }
  >();

  constructor(nodeId: string) {
    this.#nodeId = nodeId;
  }

  /** Add (or replace) behaviour `name`; its spawn arguments are validated with `argsSchema`. */
  define(
    name: string,
    argsSchema: z.ZodType | undefined,
    impl: Behaviour<any, any, any> | ProcessFn<any>,
  ): void {
    this.#defs.set(name, { schema: argsSchema, impl });
  }

  /** The names in the table. */
  names(): string[] {
    return [...this.#defs.keys()];
  }

  /**
   * Behaviour `name` of the table, with `args` validated against its schema.
   * @throws {TroupeError} `UNKNOWN_BEHAVIOUR`, `INVALID_MESSAGE`.
   */
  resolve(name: string, args: unknown): { impl: ProcessFn<any>; args: unknown } {
    const def = this.#defs.get(name);
    if (!def) {
      const known = [...this.#defs.keys()].join(', ') || 'none';
      throw new TroupeError(
        'UNKNOWN_BEHAVIOUR',
        `node ${this.#nodeId} has no behaviour "${name}" (known: ${known})`,
      );
    }
    let a = args;
    if (def.schema) {
      const r = def.schema.safeParse(args);
      if (!r.success) {
        throw new TroupeError('INVALID_MESSAGE', `invalid arguments for behaviour "${name}"`, {
          details: r.error.issues,
        });
      }
      a = r.data;
    }
    return { impl: def.impl as ProcessFn<any>, args: a };
  }
}

/** Whether `x` is a promise-like (a handler or `init` that answered asynchronously). */
export function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    typeof x === 'object' && x !== null && typeof (x as PromiseLike<unknown>).then === 'function'
  );
}

import type { z } from 'zod';
import type { Matcher, ReceiveOptions } from './receive.ts';
import { ActorRef, type AnyActorRef, type CallOptions } from './actor-ref.ts';
import type { Behaviour, ChildSpawnOptions, ProcessFn, SpawnOptions } from './behaviour.ts';
import { TroupeError } from './errors.ts';
import type { ExitReason } from './exit-reason.ts';
import type { CallEnvelope, FlowItem, SystemMessage } from './messages.ts';
import type { Clock } from './clock.ts';
import type { TransferOptions } from './transfer.ts';
import type { Node } from './node-api.ts';

/**
 * What a context needs from its actor (implemented by Actor, core/actor.ts): its identity, its
 * mailbox and the call it is answering. @internal
 */
export interface ContextActor {
  readonly id: number;
  readonly ref: AnyActorRef;
  readonly host: ContextHost<ContextActor>;
  readonly mailboxSize: number;
  readonly callSignal: AbortSignal | undefined;
  trapExit: boolean;
  receive(matcher: Matcher | undefined, options: ReceiveOptions | undefined): Promise<unknown>;
  replyCurrent(value: unknown, options?: ReplyOptions): boolean;
  deferCurrent(): (value: unknown, options?: ReplyOptions) => boolean;
}

/**
 * What an actor's context needs from the runtime (implemented by the node's runtime): links,
 * monitors, spawning, calls, the registry and exits on behalf of one actor `A`. @internal
 */
export interface ContextHost<A = ContextActor> {
  /** This node's id. */
  readonly id: string;
  /** The public node the actor runs on (what `ctx.node` returns). */
  readonly node: Node;
  link(actor: A, ref: AnyActorRef): void;
  unlink(actor: A, ref: AnyActorRef): void;
  monitor(actor: A, ref: AnyActorRef): string;
  demonitor(actor: A, monitorId: string): void;
  spawnLocal(fn: ProcessFn<unknown> | Behaviour<any, any, any>, options: SpawnOptions): AnyActorRef;
  spawnRemote(
    nodeId: string,
    name: string,
    args: unknown,
    from: A | undefined,
    options: { link?: boolean; monitor?: boolean; timeout?: number },
  ): Promise<AnyActorRef>;
  call(
    ref: AnyActorRef,
    msg: unknown,
    options: CallOptions | undefined,
    from: A | undefined,
  ): Promise<unknown>;
  register(name: string, ref: AnyActorRef): boolean;
  exitTo(ref: AnyActorRef, reason: unknown, sender?: A): void;
  exit(actor: A, reason: ExitReason): void;
}

/**
 * What an actor's code sees of itself: its ref, `receive`, `reply`, links, monitors, spawning
 * children and calling others. Handed to process functions as `self` and to behaviours as `ctx`.
 */
export class ActorContext<M = unknown> {
  #actor: ContextActor;

  /** @internal */
  constructor(actor: ContextActor) {
    this.#actor = actor;
  }

  /** This actor's ref. */
  get ref(): ActorRef<M> {
    return this.#actor.ref as ActorRef<M>;
  }

  /** The node this actor runs on. */
  get node(): Node {
    return this.#actor.host.node;
  }

  /** Messages waiting in the mailbox. */
  get mailboxSize(): number {
    return this.#actor.mailboxSize;
  }

  /**
   * Selective receive: resolve with the first message in the mailbox that matches (a zod schema
   * — resolving with its output — or a predicate), waiting for one if none does. Messages that do
   * not match stay in the mailbox, in order.
   * @throws {TroupeError} `TIMEOUT` after `options.timeout` ms without a match.
   */
  receive(): Promise<M | SystemMessage>;
  receive<S extends z.ZodType>(schema: S, options?: ReceiveOptions): Promise<z.output<S>>;
  receive<T>(predicate: (m: unknown) => m is T, options?: ReceiveOptions): Promise<T>;
  receive(predicate: (m: unknown) => boolean, options?: ReceiveOptions): Promise<unknown>;
  receive(matcher?: Matcher, options?: ReceiveOptions): Promise<unknown> {
    return this.#actor.receive(matcher, options);
  }

  /**
   * Answer the call whose message was received (or is being handled) last. Returns false if
   * there is none (or it was answered or cancelled). An async iterable answers a `stream`.
   */
  reply(value: unknown, options?: ReplyOptions): boolean {
    return this.#actor.replyCurrent(value, options);
  }

  /** Keep the current call open past this handler; returns a function that answers it later. */
  deferReply(): (value: unknown, options?: ReplyOptions) => boolean {
    return this.#actor.deferCurrent();
  }

  /**
   * The AbortSignal of the call received (or being handled) last: it aborts when the caller
   * cancels the call (`call(msg, { signal })`, reason `ABORTED`) or the caller's node is lost
   * (reason `NODE_DOWN`). Read it while handling the call and keep it for deferred work.
   * Undefined when no call is being handled.
   */
  get signal(): AbortSignal | undefined {
    return this.#actor.callSignal;
  }

  /** Turn exit signals from links into {@link Exit} messages (`true`) or not. */
  trapExit(on = true): void {
    this.#actor.trapExit = on;
  }

  /** Link with `ref` (two-way: an abnormal exit of either ends the other unless it traps exits). */
  link(ref: AnyActorRef): void {
    this.#actor.host.link(this.#actor, ref);
  }

  unlink(ref: AnyActorRef): void {
    this.#actor.host.unlink(this.#actor, ref);
  }

  /** Monitor `ref`: one {@link Down} message arrives when it ends (`noproc` at once if it is not alive). Returns the monitor id. */
  monitor(ref: AnyActorRef): string {
    return this.#actor.host.monitor(this.#actor, ref);
  }

  demonitor(monitorId: string): void {
    this.#actor.host.demonitor(this.#actor, monitorId);
  }

  /** Spawn a child on this node; `link`/`monitor` apply to this actor atomically with the spawn. */
  spawn<S extends z.ZodType>(
    fn: ProcessFn<z.output<S>>,
    options: ChildSpawnOptions & { schema: S },
  ): ActorRef<z.input<S>>;
  spawn<N, I = N, BR = unknown, R = BR>(
    fn: ProcessFn<N> | Behaviour<N, any, any, I, BR>,
    options?: ChildSpawnOptions,
  ): ActorRef<I, R>;
  spawn(
    fn: ProcessFn<any> | Behaviour<any, any, any>,
    options: ChildSpawnOptions = {},
  ): AnyActorRef {
    const { link, monitor, ...rest } = options;
    const opts: SpawnOptions = rest;
    if (link) opts.link = this.#actor.ref;
    if (monitor) opts.monitor = this.#actor.ref;
    return this.#actor.host.spawnLocal(fn as ProcessFn<unknown>, opts);
  }

  /**
   * Spawn a named behaviour on another node (see `node.define`), linked to and/or monitored by
   * this actor atomically with the spawn.
   */
  spawnOn<N = unknown>(
    nodeId: string,
    behaviour: string,
    args?: unknown,
    options: { link?: boolean; monitor?: boolean; timeout?: number } = {},
  ): Promise<ActorRef<N>> {
    return this.#actor.host.spawnRemote(nodeId, behaviour, args, this.#actor, options) as Promise<
      ActorRef<N>
    >;
  }

  /**
   * Call `ref` from this actor.
   * @throws {TroupeError} `CALLING_SELF` when `ref` is this actor; otherwise as `ActorRef.call`.
   */
  call<R = unknown>(ref: AnyActorRef, msg: unknown, options?: CallOptions): Promise<R> {
    if (ref.node === this.#actor.host.id && ref.id === this.#actor.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    return this.#actor.host.call(ref, msg, options, this.#actor) as Promise<R>;
  }

  /** Register this actor under `name` (cluster-wide). */
  register(name: string): boolean {
    return this.#actor.host.register(name, this.#actor.ref);
  }

  /**
   * `exit(reason)`: end this actor now (default reason `normal`).
   * `exit(ref, reason)`: send `ref` an exit signal from this actor (Erlang's `exit/2`; `'kill'`
   * cannot be trapped).
   * A reason is any data ({@link ExitReason}: the strings above, an error reason, or a value
   * that crosses the wire); it reaches links and monitors as it was given.
   */
  exit(reason?: unknown): void;
  exit(ref: AnyActorRef, reason: unknown): void;
  exit(a: unknown = 'normal', reason?: unknown): void {
    if (a instanceof ActorRef && arguments.length >= 2) {
      this.#actor.host.exitTo(a, reason, this.#actor);
      return;
    }
    this.#actor.host.exit(this.#actor, a as ExitReason);
  }
}

/** Options of `ctx.reply` and of a deferred reply. */
export interface ReplyOptions extends TransferOptions {}

/**
 * What an actor needs from the runtime it lives in (implemented by the node's runtime): ending,
 * scheduling, answering calls and reporting what it cannot take. @internal
 */
export interface ActorHost<A = ContextActor> extends ContextHost<A> {
  readonly clock: Clock;
  /** Whether error reasons carry stacks. */
  readonly exposeStacks: boolean;
  /** End `actor`: settle its calls, fire its links and monitors, drop its names. */
  exit(actor: A, reason: ExitReason, result?: unknown): void;
  /** Put a behaviour actor on the run queue. */
  schedule(actor: A): void;
  /** Answer a call (`transfer`: the reply's transfer list). */
  reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void;
  /** A behaviour's schema rejected a message it took from its mailbox. */
  invalid(actor: A, issues: unknown, call: CallEnvelope | undefined): void;
  /** A behaviour without `info` got a system message. */
  dropSystem(actor: A, msg: SystemMessage): void;
  /** An awaited send was taken by its actor (or dropped with its mailbox): credit its sender. */
  flowTaken(item: FlowItem): void;
}

import { randomBytes } from '@noble/hashes/utils.js';
import type { z } from 'zod';
import { Actor, type ActorHost } from './actor.ts';
import type { ContextHost } from './actor-context.ts';
import { ActorLinks } from './actor-links.ts';
import {
  ActorRef,
  type AnyActorRef,
  type CallOptions,
  type RefHost,
  type SendAwaitOptions,
  type SendOptions,
} from './actor-ref.ts';
import { type Behaviour, BehaviourTable, type ProcessFn, type SpawnOptions } from './behaviour.ts';
import { CallTable } from './call-table.ts';
import type { Clock } from './clock.ts';
import { Codec } from './codec.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import { type ExitReason, isErrorReason } from './exit-reason.ts';
import { CreditBook } from './flow-credit.ts';
import type { Link } from './link.ts';
import { CallEnvelope, Down, FlowItem, NameLost, type SystemMessage } from './messages.ts';
import {
  DEFAULTS,
  type DeadLetterReason,
  type NodeEvents,
  type ResolvedOptions,
} from './node-options.ts';
import type { SpawnRequest } from './envelope-read.ts';
import { writeFlowGrant } from './envelope-write.ts';
import { Registry } from './registry.ts';
import { Delivery } from './delivery.ts';
import { Calls } from './runtime-calls.ts';
import type { RuntimeConfig, RuntimeWire } from './runtime-wire.ts';
import type { RouterHost } from './router.ts';
import { Scheduler } from './scheduler.ts';
import { SessionBook } from './session.ts';
import { openStream, type StreamOptions, type StreamReader } from './stream.ts';

/**
 * A node's internal runtime: the actor table, delivery, calls and replies, exits, dead letters,
 * encoding and the run queue. The public {@link Node} is a facade over it; actors reach it as
 * their {@link ActorHost}, refs as their {@link RefHost}, the actor links as their host, and the
 * router as its RouterHost (see docs/ARCHITECTURE.md). @internal
 */
export class Runtime implements ActorHost, RefHost, RouterHost {
  readonly id: string;
  readonly incarnation: string;
  readonly clock: Clock;
  readonly options: ResolvedOptions;
  readonly events: Emitter<NodeEvents>;
  readonly node: ContextHost['node'];
  readonly exposeStacks: boolean;

  /** @internal The live local actors. */
  readonly actors = new Map<number, Actor>();
  /**
   * Actor ids start at a random point below 2^30 in each incarnation (a stand-in for Erlang's
   * "creation"): refs from a previous life of a node restarted under the same id reach no actor
   * (`NO_ACTOR`) instead of a stranger, unless the two lives' id ranges happen to overlap (for k
   * actors per life, a chance of about 2k/2^30). Ids stay small integers (V8 Smis up to 2^31),
   * which keeps actor tables and headers compact.
   */
  #nextActor = 1 + actorIdBase();
  /** @internal */
  readonly calls: CallTable;
  /** End-to-end credit of awaited sends, both ways (core/flow-credit.ts). */
  readonly credit: CreditBook;
  /** @internal */
  readonly sessions = new SessionBook();
  #registry: Registry;
  /** @internal */
  readonly behaviourTable: BehaviourTable;
  /** @internal */
  readonly codec: Codec;
  /** @internal */
  readonly wire: RuntimeWire;
  #actorLinks: ActorLinks;
  #scheduler = new Scheduler();
  readonly #delivery: Delivery;
  readonly #callsOut: Calls;
  #shut = false;

  constructor(config: RuntimeConfig) {
    this.id = config.id;
    this.incarnation = config.incarnation;
    this.clock = config.clock;
    this.options = config.options;
    this.events = config.events;
    this.node = config.node;
    this.exposeStacks = config.options.exposeStacks;
    this.calls = new CallTable(this.clock);
    // Four link windows: enough to keep a link busy (a 1 MB message is not stop-and-wait), still bounded.
    const hwm = this.options.highWaterMark;
    const window = 4 * (Number.isSafeInteger(hwm) && hwm > 0 ? hwm : DEFAULTS.highWaterMark);
    this.credit = new CreditBook(window, this.clock, (node, bytes) => {
      this.wire.emit(node, writeFlowGrant(node, this.id, bytes), undefined, { to: node });
    });
    this.behaviourTable = new BehaviourTable(this.id);
    this.codec = new Codec(
      (node, id, addrs) => this.#bindRef(node, id, addrs),
      { maxDepth: this.options.maxDepth },
      (node) => this.wire.addressesFor(node),
    );
    this.#registry = new Registry(
      {
        id: this.id,
        broadcast: (text, except) => this.wire.broadcast(text, except),
        sendOn: (link, text) => (link as Link).enqueue(text),
        lost: (name, loser, winner) => this.#nameLost(name, loser, winner),
        // Through #bindRef: a name learned from a link also teaches the route to its node.
        refFor: (node, id) => this.#bindRef(node, id, undefined),
      },
      config.registryBackend,
    );
    this.wire = config.wire({ sessions: this.sessions, registry: this.#registry }, this);
    this.#actorLinks = new ActorLinks(this, this.actors, this.sessions, this.wire, this.codec);
    this.#delivery = new Delivery(this);
    this.#callsOut = new Calls(this, this.#delivery);
    this.#registry.startBackend((err) =>
      this.events.emit('discoveryError', {
        discovery: `registry:${config.registryBackend?.name}`,
        error: toTroupeError(err, 'TRANSPORT_CLOSED'),
      }),
    );
  }

  // ---------------------------------------------------------------------------------------
  // ContextHost: what an actor's context does through the runtime

  link(actor: Actor, ref: AnyActorRef): void {
    this.#actorLinks.link(actor, ref);
  }

  unlink(actor: Actor, ref: AnyActorRef): void {
    this.#actorLinks.unlink(actor, ref);
  }

  monitor(actor: Actor, ref: AnyActorRef): string {
    return this.#actorLinks.monitor(actor, ref);
  }

  demonitor(actor: Actor, monitorId: string): void {
    this.#actorLinks.demonitor(actor, monitorId);
  }

  /** The live local actor `id`, if any. */
  actor(id: number): Actor | undefined {
    return this.actors.get(id);
  }

  /** A ref for `{ node, id }` bound to this runtime. */
  ref(node: string, id: number): AnyActorRef {
    return new ActorRef(this, node, id);
  }

  /** The registered name's ref, as this node sees the cluster. */
  whereis(name: string): AnyActorRef | undefined {
    return this.#registry.get(name);
  }

  // ---------------------------------------------------------------------------------------
  // Actors

  /**
   * Spawn an actor here. `remoteWatch`: a monitor held by another node's actor, set before the
   * actor runs (remote spawn).
   * @throws {TroupeError} `SHUTDOWN`, `NAME_TAKEN`.
   */
  spawnLocal(
    what: ProcessFn<any> | Behaviour<any, any, any>,
    options: SpawnOptions,
    remoteWatch?: { mid: string; watcher: AnyActorRef },
  ): AnyActorRef {
    if (this.#shut) throw new TroupeError('SHUTDOWN', 'node is shut down');
    if (options.name !== undefined && this.#registry.get(options.name)) {
      throw new TroupeError('NAME_TAKEN', `name "${options.name}" is already registered`);
    }
    const id = this.#nextActor++;
    const ref = new ActorRef(this, this.id, id);
    const isFn = typeof what === 'function';
    const actor = new Actor(
      this,
      id,
      ref,
      isFn ? 'process' : 'behaviour',
      options.maxMailbox ?? this.options.maxMailbox,
    );
    actor.schema = options.schema ?? (isFn ? undefined : what.schema);
    if (options.trapExit) actor.trapExit = true;
    this.actors.set(id, actor);
    if (options.name !== undefined) this.register(options.name, ref);
    if (remoteWatch) this.#actorLinks.watchedFrom(actor, remoteWatch.mid, remoteWatch.watcher);
    if (options.link) this.#actorLinks.link(actor, options.link);
    if (options.monitor) {
      const watcher =
        options.monitor.node === this.id ? this.actors.get(options.monitor.id) : undefined;
      if (watcher) this.#actorLinks.monitor(watcher, ref);
    }
    if (!actor.alive) return ref; // linked to something already dead
    if (isFn) {
      const fn = what;
      actor.startProcess(options.args === undefined ? fn : (self) => fn(self, options.args));
    } else {
      actor.startBehaviour(what, options.args);
    }
    return ref;
  }

  /**
   * Add a named behaviour to this node's behaviour table, so other nodes can spawn it here with
   * `node.spawn(thisNodeId, name, args)`. `args` are validated with `argsSchema`.
   */
  define<A>(
    name: string,
    argsSchema: z.ZodType<A> | undefined,
    impl: Behaviour<any, any, A> | ProcessFn<any>,
  ): void {
    this.behaviourTable.define(name, argsSchema, impl);
  }

  /** The names in this node's behaviour table. */
  behaviours(): string[] {
    return this.behaviourTable.names();
  }

  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: AnyActorRef): boolean {
    return ref.node === this.id && this.actors.has(ref.id);
  }

  /** Number of live actors on this node. */
  get actorCount(): number {
    return this.actors.size;
  }

  /**
   * Call `onDown` once when `ref` ends (with `noproc` if it is not alive, `noconnection` if its
   * node is lost). Returns a function that cancels the watch.
   */
  watch(
    ref: AnyActorRef,
    onDown: (down: Down) => void,
    onCancel?: (err: TroupeError) => void,
  ): () => void {
    const watcher = this.spawnLocal(async (self) => {
      self.monitor(ref);
      let m: unknown;
      try {
        m = await self.receive((x) => x instanceof Down);
      } catch (err) {
        // The watch ended first (this node shut down, or the watch was cancelled).
        onCancel?.(toTroupeError(err, 'SHUTDOWN'));
        return;
      }
      onDown(m as Down);
    }, {});
    return () => this.exitTo(watcher, 'kill');
  }

  /**
   * Resolve with the DOWN message of `ref` (see {@link Node.watch}).
   * @throws {TroupeError} `SHUTDOWN` when this node shuts down first.
   */
  waitDown(ref: AnyActorRef): Promise<Down> {
    return new Promise((resolve, reject) =>
      this.watch(ref, resolve, () =>
        reject(
          new TroupeError('SHUTDOWN', `node ${this.id} shut down while waiting for ${ref.key}`),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Registry

  /**
   * Register `ref` under `name`, cluster-wide. Returns false if this node already sees the name
   * taken. A concurrent claim on another node is resolved deterministically (see README); the
   * loser's actor receives a `NAME_LOST` message.
   */
  register(name: string, ref: AnyActorRef): boolean {
    if (ref.node === this.id) {
      const actor = this.actors.get(ref.id);
      if (!actor) return false;
      if (!this.#registry.register(name, ref)) return false;
      (actor.names ??= []).includes(name) || actor.names.push(name);
      return true;
    }
    // Registering a remote actor: it is the owner's job to remove the name when it dies, so
    // only owners register. Erlang's global allows it; we keep names owned by their node.
    return false;
  }

  /** Remove `name` (only a name owned by one of this node's actors). */
  unregister(name: string): boolean {
    const ref = this.#registry.get(name);
    if (!ref || ref.node !== this.id) return false;
    const actor = this.actors.get(ref.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    return this.#registry.unregister(name, ref);
  }

  /** Every registered name this node sees. */
  registered(): Map<string, AnyActorRef> {
    return new Map(this.#registry.entries());
  }

  #nameLost(name: string, loser: AnyActorRef, winner: AnyActorRef): void {
    const actor = this.actors.get(loser.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    this.events.emit('nameConflict', { name, winner, loser });
    actor?.enqueueSystem(new NameLost(name, winner));
  }

  /**
   * Router: the session with `node` ended (core/session.ts): settle every call, monitor
   * and link with it — calls `NODE_DOWN`, DOWN / exit `noconnection`.
   */
  settleSession(node: string, reason: string): void {
    this.calls.dropNode(node, reason);
    this.credit.dropNode(node, reason);
    this.#actorLinks.settle(node);
    // Work for calls from that node is wasted: tell the handlers that asked for `ctx.signal`.
    for (const actor of this.actors.values()) actor.abortCallsFrom(node);
  }

  // ---------------------------------------------------------------------------------------
  // Encoding

  #bindRef(node: string, id: number, addrs: string[] | undefined): AnyActorRef {
    this.wire.learnRef(node, addrs);
    return new ActorRef(this, node, id);
  }

  // ---------------------------------------------------------------------------------------
  // Incoming envelopes for this node's actors (from the Router)

  /** Node `origin` granted credit back for our awaited sends (an `fg`). */
  inGrant(origin: string, bytes: number): void {
    this.credit.release(origin, bytes);
  }

  /** ActorHost: an awaited send was taken by its actor (or dropped here): credit its sender. */
  flowTaken(item: FlowItem): void {
    this.credit.taken(item.origin, item.bytes);
  }

  // ---------------------------------------------------------------------------------------
  // Delivery, calls, replies

  /** RefHost */
  callTo(ref: AnyActorRef, msg: unknown, options?: CallOptions): Promise<unknown> {
    return this.call(ref, msg, options, undefined);
  }

  /** RefHost */
  streamFrom(ref: AnyActorRef, msg: unknown, options?: StreamOptions): StreamReader<unknown> {
    return openStream(this.node, ref, msg, options);
  }

  /** A call was cancelled by its caller (`ca`, or a local abort). */
  inCancel(id: number, origin: string, callId: number): void {
    this.actors.get(id)?.cancelCall(origin, callId);
  }

  /** RefHost */
  exitTo(ref: AnyActorRef, reason: unknown, sender?: Actor): void {
    const from = (sender ?? this.#scheduler.running)?.ref;
    if (ref.node === this.id) {
      const actor = this.actors.get(ref.id);
      if (actor) this.#actorLinks.exitSignal(actor, from, reason, undefined, false);
      return;
    }
    this.#actorLinks.sendExit(ref, this.id, from?.id ?? 0, reason, undefined, false);
  }

  /** report a `deadLetter` event (only built when someone listens) */
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void {
    if (this.events.has('deadLetter'))
      this.events.emit('deadLetter', { to, reason, message, error });
  }

  /** a behaviour without `info` got a system message */
  dropSystem(actor: Actor, msg: SystemMessage): void {
    this.deadLetter(actor.ref.key, 'system-message', msg);
  }

  // ---------------------------------------------------------------------------------------
  // Delivery (core/delivery.ts) and calls (core/runtime-calls.ts)

  /** The actor running now, if any. */
  get running(): Actor | undefined {
    return this.#scheduler.running;
  }
  /** The id the next local actor takes. */
  get nextActorId(): number {
    return this.#nextActor;
  }
  encode(value: unknown, to: string): string | undefined {
    return this.#delivery.encode(value, to);
  }
  decodePayload(payload: string | undefined, to: string) {
    return this.#delivery.decodePayload(payload, to);
  }
  inSend(id: number, origin: string, payload: string | undefined): void {
    this.#delivery.inSend(id, origin, payload);
  }
  inFlow(id: number, origin: string, payload: string | undefined): void {
    this.#delivery.inFlow(id, origin, payload);
  }
  inCall(id: number, origin: string, callId: number, payload: string | undefined): void {
    this.#delivery.inCall(id, origin, callId, payload);
  }
  sendTo(ref: AnyActorRef, msg: unknown, options?: SendOptions): void {
    this.#delivery.sendTo(ref, msg, options);
  }
  invalid(actor: Actor, issues: unknown, call: CallEnvelope | undefined): void {
    this.#delivery.invalid(actor, issues, call);
  }
  inReply(callId: number, ok: 0 | 1, payload: string | undefined): void {
    this.#callsOut.inReply(callId, ok, payload);
  }
  inSpawn(request: SpawnRequest, payload: string | undefined): void {
    this.#callsOut.inSpawn(request, payload);
  }
  spawnRemote(
    nodeId: string,
    name: string,
    args: unknown,
    from: Actor | undefined,
    opts: { link?: boolean; monitor?: boolean; timeout?: number },
  ): Promise<AnyActorRef> {
    return this.#callsOut.spawnRemote(nodeId, name, args, from, opts);
  }
  sendAwaitTo(ref: AnyActorRef, msg: unknown, options?: SendAwaitOptions): Promise<void> {
    return this.#callsOut.sendAwaitTo(ref, msg, options);
  }
  call(ref: AnyActorRef, msg: unknown, options: CallOptions | undefined, from: Actor | undefined) {
    return this.#callsOut.call(ref, msg, options, from);
  }
  reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void {
    this.#callsOut.reply(call, ok, value, transfer);
  }
  replyError(node: string, callId: number, error: TroupeError): void {
    this.#callsOut.replyError(node, callId, error);
  }

  // ---------------------------------------------------------------------------------------
  // Scheduling

  /** put a behaviour actor on the run queue */
  schedule(actor: Actor): void {
    this.#scheduler.schedule(actor);
  }

  // ---------------------------------------------------------------------------------------
  // Links, monitors, exits

  /** the links and monitors between actors (for ActorContext, and the Router's x, l/u, m, dm, d) */
  get actorLinks(): ActorLinks {
    return this.#actorLinks;
  }

  /** end an actor: settle its calls, fire its links and monitors, drop its names */
  exit(actor: Actor, reason: ExitReason, result?: unknown): void {
    if (!actor.alive) return;
    const calls = actor.teardown();
    this.actors.delete(actor.id);
    this.#actorLinks.forget(actor);
    const ref = actor.ref;
    for (const c of calls) {
      c.done = true;
      this.#callsOut.replyTo(
        c.replyNode,
        c.callId,
        false,
        new TroupeError(
          'ACTOR_EXITED',
          `actor ${ref.key} exited (${describeReason(reason)}) before replying`,
          { details: { reason } },
        ),
      );
    }
    if (actor.names) for (const name of actor.names) this.#registry.unregister(name, ref);
    const b = actor.behaviour;
    if (b?.terminate) {
      try {
        b.terminate(reason, actor.state);
      } catch (err) {
        this.events.emit('listenerError', { error: err });
      }
    }
    this.#actorLinks.ended(actor, reason, result);
    if (isErrorReason(reason)) this.events.emit('actorCrashed', { ref, reason });
  }

  // ---------------------------------------------------------------------------------------
  // Shutdown

  /**
   * Stop the node: every actor exits with reason `shutdown` (their links and monitors fire,
   * remote ones too), pending calls reject with `SHUTDOWN`, links and transports close.
   */
  async shutdown(): Promise<void> {
    if (this.#shut) return;
    this.#shut = true;
    this.wire.stopRetiring();
    for (const actor of [...this.actors.values()]) this.exit(actor, 'shutdown');
    // Settle calls before the links close: closing them would reject these with NODE_DOWN.
    this.calls.rejectAll(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    this.credit.close(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    this.wire.stopSwitches();
    // Let the exit/DOWN envelopes leave before the links close.
    await new Promise<void>((r) => queueMicrotask(r));
    await this.#registry.stopBackend().catch(() => {});
    await this.wire.close();
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shut;
  }
}

/** A random start below 2^30 for actor ids (see `Runtime#nextActor`). */
function actorIdBase(): number {
  const r = randomBytes(4);
  return ((r[0] << 22) | (r[1] << 14) | (r[2] << 6) | (r[3] >> 2)) & 0x3fffffff;
}

function describeReason(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (isErrorReason(reason)) return `${reason.name}: ${reason.message}`;
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}

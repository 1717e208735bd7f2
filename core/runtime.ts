import type { z } from 'zod';
import { Actor } from './actor.ts';
import type { ActorHost } from './actor-context.ts';
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
import type { ExitReason } from './exit-reason.ts';
import { CreditBook } from './flow-credit.ts';
import type { Link } from './link.ts';
import { CallEnvelope, FlowItem, type SystemMessage } from './messages.ts';
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
import { endActor } from './runtime-exits.ts';
import { Names } from './runtime-names.ts';
import { actorIdBase, spawnLocal } from './runtime-spawn.ts';
import type { RuntimeConfig, RuntimeWire } from './runtime-wire.ts';
import type { RouterHost } from './router.ts';
import { Scheduler } from './scheduler.ts';
import type { MessageSchema } from './schema-check.ts';
import { SessionBook } from './session.ts';
import { openStream, type StreamOptions, type StreamReader } from './stream.ts';

/**
 * A node's internal runtime: the actor table, delivery, calls and replies, exits, dead letters,
 * encoding and the run queue. The public {@link Node} is a facade over it; actors reach it as
 * their {@link ActorHost}, refs as their {@link RefHost}, the actor links as their host, and the
 * router as its RouterHost (see docs/ARCHITECTURE.md). @internal
 */
export class Runtime implements ActorHost<Actor>, RefHost, RouterHost {
  readonly id: string;
  readonly incarnation: string;
  readonly clock: Clock;
  readonly options: ResolvedOptions;
  readonly events: Emitter<NodeEvents>;
  readonly node: ContextHost['node'];
  readonly exposeStacks: boolean;

  /** @internal The live local actors. */
  readonly actors = new Map<number, Actor>();
  /** The next local actor id (see actorIdBase in core/runtime-spawn.ts). */
  #nextActor = 1 + actorIdBase();
  /** @internal */
  readonly calls: CallTable;
  /** End-to-end credit of awaited sends, both ways (core/flow-credit.ts). */
  readonly credit: CreditBook;
  readonly sessions = new SessionBook();
  /** What each actor schema validates with (core/schema-check.ts). */
  readonly schemaChecks = new WeakMap<z.ZodType, MessageSchema>();
  /** @internal */
  readonly registry: Registry;
  /** @internal */
  readonly behaviourTable: BehaviourTable;
  /** @internal */
  readonly codec: Codec;
  /** @internal */
  readonly wire: RuntimeWire;
  #actorLinks: ActorLinks;
  #scheduler = new Scheduler();
  readonly #delivery: Delivery;
  readonly #names: Names;
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
    this.calls = new CallTable(this.clock, this.id);
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
    this.registry = new Registry(
      {
        id: this.id,
        broadcast: (text, except) => this.wire.broadcast(text, except),
        sendOn: (link, text) => (link as Link).enqueue(text),
        lost: (name, loser, winner) => this.#names.nameLost(name, loser, winner),
        // Through #bindRef: a name learned from a link also teaches the route to its node.
        refFor: (node, id) => this.#bindRef(node, id, undefined),
        isReachable: (node) => this.wire.isReachable(node),
      },
      config.registryBackend,
    );
    this.wire = config.wire({ sessions: this.sessions, registry: this.registry }, this);
    this.#actorLinks = new ActorLinks(this, this.actors, this.sessions, this.wire, this.codec);
    this.#delivery = new Delivery(this);
    this.#names = new Names(this);
    this.#callsOut = new Calls(this, this.#delivery);
    this.registry.startBackend((err) =>
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
    return this.registry.get(name);
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
    return spawnLocal(this, what, options, remoteWatch);
  }

  /** Take the next local actor id. */
  newActorId(): number {
    return this.#nextActor++;
  }

  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: AnyActorRef): boolean {
    return ref.node === this.id && this.actors.has(ref.id);
  }

  // ---------------------------------------------------------------------------------------
  // Registry

  /** See {@link Node.register}. */
  register(name: string, ref: AnyActorRef): boolean {
    return this.#names.register(name, ref);
  }
  /** See {@link Node.unregister}. */
  unregister(name: string): boolean {
    return this.#names.unregister(name);
  }
  /** See {@link Node.registered}. */
  registered(): Map<string, AnyActorRef> {
    return this.#names.registered();
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
  replyTo(node: string, callId: number, ok: boolean, value: unknown): void {
    this.#callsOut.replyTo(node, callId, ok, value);
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

  /** End an actor: settle its calls, fire its links and monitors, drop its names. */
  exit(actor: Actor, reason: ExitReason, result?: unknown): void {
    endActor(this, actor, reason, result);
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
    await this.registry.stopBackend().catch(() => {});
    await this.wire.close();
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shut;
  }
}

import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
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
import { type ErrorData, TroupeError, toTroupeError } from './errors.ts';
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
import { DIRECT_REPLY, DIRECT_SEND, type EnvelopeHeader } from './protocol.ts';
import { Registry, type RegistryBackend } from './registry.ts';
import type { RouterHost } from './router.ts';
import { Scheduler } from './scheduler.ts';
import { SessionBook } from './session.ts';
import { openStream, type StreamOptions, type StreamReader } from './stream.ts';
import { isAsyncIterable, serveStream } from './stream-serve.ts';
import { decodeTransfer, encodeTransfer, TRANSFER_PREFIX } from './transfer.ts';

/**
 * What the runtime needs from the link layer (implemented by the Router): routes, envelopes out,
 * the registry's broadcast and shutdown. @internal
 */
export interface RuntimeWire {
  route(node: string): Link | undefined;
  congested(link: Link): TroupeError;
  /** The link whose frame is being decoded now (its transferred objects travel beside it). */
  readonly decodingLink: Link | undefined;
  learnRef(node: string, addrs: string[] | undefined): void;
  addressesFor(node: string): string[] | undefined;
  broadcast(text: string, except?: unknown): void;
  emit(
    node: string,
    header: string,
    payload: string | undefined,
    what: { to: string; message?: unknown; droppable?: boolean },
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined;
  emitTraffic(
    node: string,
    kind: number,
    x: number,
    y: number,
    payload: string,
    to: string,
    message?: unknown,
    droppable?: boolean,
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined;
  sendCall(node: string, id: number, callId: number, payload: string): TroupeError | undefined;
  stopRetiring(): void;
  stopSwitches(): void;
  close(): Promise<void>;
}

/** What the link layer is built from (handed to the Router). @internal */
export interface WireParts {
  sessions: SessionBook;
  registry: Registry;
}

/** What a runtime is made with (by the Node). @internal */
export interface RuntimeConfig {
  id: string;
  incarnation: string;
  clock: Clock;
  options: ResolvedOptions;
  events: Emitter<NodeEvents>;
  /** The public facade (what `ctx.node` returns). */
  node: ContextHost['node'];
  /** A shared registry store (`NodeOptions.registry`), if any. */
  registryBackend?: RegistryBackend;
  /** Builds the link layer over the runtime's sessions and registry. */
  wire: (parts: WireParts, host: RouterHost) => RuntimeWire;
}

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

  #actors = new Map<number, Actor>();
  /**
   * Actor ids start at a random point below 2^30 in each incarnation (a stand-in for Erlang's
   * "creation"): refs from a previous life of a node restarted under the same id reach no actor
   * (`NO_ACTOR`) instead of a stranger, unless the two lives' id ranges happen to overlap (for k
   * actors per life, a chance of about 2k/2^30). Ids stay small integers (V8 Smis up to 2^31),
   * which keeps actor tables and headers compact.
   */
  #nextActor = 1 + actorIdBase();
  #calls: CallTable;
  /** End-to-end credit of awaited sends, both ways (core/flow-credit.ts). */
  #credit: CreditBook;
  #sessions = new SessionBook();
  #registry: Registry;
  #behaviours: BehaviourTable;
  #codec: Codec;
  #wire: RuntimeWire;
  #actorLinks: ActorLinks;
  #scheduler = new Scheduler();
  #shut = false;

  constructor(config: RuntimeConfig) {
    this.id = config.id;
    this.incarnation = config.incarnation;
    this.clock = config.clock;
    this.options = config.options;
    this.events = config.events;
    this.node = config.node;
    this.exposeStacks = config.options.exposeStacks;
    this.#calls = new CallTable(this.clock);
    // Four link windows: enough to keep a link busy (a 1 MB message is not stop-and-wait), still bounded.
    const hwm = this.options.highWaterMark;
    const window = 4 * (Number.isSafeInteger(hwm) && hwm > 0 ? hwm : DEFAULTS.highWaterMark);
    this.#credit = new CreditBook(window, this.clock, (node, bytes) => {
      const header = JSON.stringify({ t: 'fg', n: node, o: this.id, h: 0, b: bytes });
      this.#wire.emit(node, header, undefined, { to: node });
    });
    this.#behaviours = new BehaviourTable(this.id);
    this.#codec = new Codec(
      (node, id, addrs) => this.#bindRef(node, id, addrs),
      { maxDepth: this.options.maxDepth },
      (node) => this.#wire.addressesFor(node),
    );
    this.#registry = new Registry(
      {
        id: this.id,
        broadcast: (text, except) => this.#wire.broadcast(text, except),
        sendOn: (link, text) => (link as Link).enqueue(text),
        lost: (name, loser, winner) => this.#nameLost(name, loser, winner),
        // Through #bindRef: a name learned from a link also teaches the route to its node.
        refFor: (node, id) => this.#bindRef(node, id, undefined),
      },
      config.registryBackend,
    );
    this.#wire = config.wire({ sessions: this.#sessions, registry: this.#registry }, this);
    this.#actorLinks = new ActorLinks(this, this.#actors, this.#sessions, this.#wire, this.#codec);
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
    return this.#actors.get(id);
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
    this.#actors.set(id, actor);
    if (options.name !== undefined) this.register(options.name, ref);
    if (remoteWatch) this.#actorLinks.watchedFrom(actor, remoteWatch.mid, remoteWatch.watcher);
    if (options.link) this.#actorLinks.link(actor, options.link);
    if (options.monitor) {
      const watcher =
        options.monitor.node === this.id ? this.#actors.get(options.monitor.id) : undefined;
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
    this.#behaviours.define(name, argsSchema, impl);
  }

  /** The names in this node's behaviour table. */
  behaviours(): string[] {
    return this.#behaviours.names();
  }

  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: AnyActorRef): boolean {
    return ref.node === this.id && this.#actors.has(ref.id);
  }

  /** Number of live actors on this node. */
  get actorCount(): number {
    return this.#actors.size;
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
      const actor = this.#actors.get(ref.id);
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
    const actor = this.#actors.get(ref.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    return this.#registry.unregister(name, ref);
  }

  /** Every registered name this node sees. */
  registered(): Map<string, AnyActorRef> {
    return new Map(this.#registry.entries());
  }

  #nameLost(name: string, loser: AnyActorRef, winner: AnyActorRef): void {
    const actor = this.#actors.get(loser.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    this.events.emit('nameConflict', { name, winner, loser });
    actor?.enqueueSystem(new NameLost(name, winner));
  }

  /**
   * Router: the session with `node` ended (core/session.ts): settle every call, monitor
   * and link with it — calls `NODE_DOWN`, DOWN / exit `noconnection`.
   */
  settleSession(node: string, reason: string): void {
    this.#calls.dropNode(node, reason);
    this.#credit.dropNode(node, reason);
    this.#actorLinks.settle(node);
    // Work for calls from that node is wasted: tell the handlers that asked for `ctx.signal`.
    for (const actor of this.#actors.values()) actor.abortCallsFrom(node);
  }

  // ---------------------------------------------------------------------------------------
  // Encoding

  #bindRef(node: string, id: number, addrs: string[] | undefined): AnyActorRef {
    this.#wire.learnRef(node, addrs);
    return new ActorRef(this, node, id);
  }

  /** encode `value` for `to`; undefined (and a `not-serializable` dead letter) if it cannot be. */
  encode(value: unknown, to: string): string | undefined {
    try {
      return this.#codec.encode(value);
    } catch (err) {
      this.deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** decode a payload for `to`; a failure is reported as an `invalidMessage` event. */
  decodePayload(
    payload: string | undefined,
    to: string,
  ): { ok: true; value: unknown } | { ok: false; error: TroupeError } {
    if (payload === undefined) return { ok: true, value: undefined };
    try {
      return { ok: true, value: this.#decode(payload) };
    } catch (err) {
      const error = toTroupeError(err, 'INVALID_MESSAGE');
      this.events.emit('invalidMessage', { to, error });
      return { ok: false, error };
    }
  }

  // ---------------------------------------------------------------------------------------
  // Incoming envelopes for this node's actors (from the Router)

  /** */
  inSend(id: number, origin: string, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.deadLetter(`${this.id}/${id}`, 'no-actor');
      return;
    }
    // The hot path: decode without a result object per message.
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.#decode(payload);
    } catch (err) {
      this.events.emit('invalidMessage', {
        to: actor.ref.key,
        error: toTroupeError(err, 'INVALID_MESSAGE'),
      });
      return;
    }
    this.#deliver(actor, msg, 0, origin);
  }

  /**
   * An awaited send: into the mailbox unbounded (its sender's credit bounds it), credited back
   * when the actor takes it; credited back at once when it cannot be delivered.
   */
  inFlow(id: number, origin: string, payload: string | undefined): void {
    const bytes = payload?.length ?? 0;
    const actor = this.#actors.get(id);
    if (!actor) {
      this.deadLetter(`${this.id}/${id}`, 'no-actor');
      return this.#credit.taken(origin, bytes);
    }
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.#decode(payload);
    } catch (err) {
      this.events.emit('invalidMessage', {
        to: actor.ref.key,
        error: toTroupeError(err, 'INVALID_MESSAGE'),
      });
      return this.#credit.taken(origin, bytes);
    }
    if (actor.schema !== undefined && actor.validatesOnArrival) {
      const r = actor.schema.safeParse(msg);
      if (!r.success) {
        this.#invalid(actor, r.error.issues, 0, origin);
        return this.#credit.taken(origin, bytes);
      }
      msg = r.data;
    }
    actor.enqueue(new FlowItem(msg, origin, bytes), false);
  }

  /** Node `origin` granted credit back for our awaited sends (an `fg`). */
  inGrant(origin: string, bytes: number): void {
    this.#credit.release(origin, bytes);
  }

  /** ActorHost: an awaited send was taken by its actor (or dropped here): credit its sender. */
  flowTaken(item: FlowItem): void {
    this.#credit.taken(item.origin, item.bytes);
  }

  /** */
  inCall(id: number, origin: string, callId: number, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.replyError(origin, callId, new TroupeError('NO_ACTOR', `no actor ${this.id}/${id}`));
      return;
    }
    const d = this.decodePayload(payload, actor.ref.key);
    if (!d.ok) {
      this.replyError(origin, callId, d.error);
      return;
    }
    this.#deliver(actor, d.value, callId, origin);
  }

  /** */
  inReply(callId: number, ok: 0 | 1, payload: string | undefined): void {
    if (!this.#calls.has(callId)) {
      this.deadLetter(`${this.id}#call${callId}`, 'late-reply');
      return;
    }
    let value: unknown;
    try {
      value = payload === undefined ? undefined : this.#decode(payload);
    } catch (err) {
      this.#calls.settle(callId, false, toTroupeError(err, 'INVALID_MESSAGE'));
      return;
    }
    this.#calls.settle(callId, ok === 1, ok === 1 ? value : TroupeError.fromData(value));
  }

  /** */
  inSpawn(h: Extract<EnvelopeHeader, { t: 'sp' }>, payload: string | undefined): void {
    const d = this.decodePayload(payload, `${this.id}:spawn:${h.b}`);
    if (!d.ok) return this.replyError(h.o, h.c, d.error);
    const watcher = h.w ? new ActorRef(this, h.o, h.w) : undefined;
    let def: { impl: ProcessFn<any>; args: unknown };
    try {
      if (this.#shut) throw new TroupeError('SHUTDOWN', 'node is shut down');
      def = this.#behaviours.resolve(h.b, d.value);
    } catch (err) {
      return this.replyError(h.o, h.c, toTroupeError(err));
    }
    // Reply before the actor runs: the caller sets up its side of the monitor/link when the
    // reply arrives, so a DOWN or EXIT from a failing init must follow the reply on the wire
    // (it then carries the real reason, not `noproc`). The ref is the id #spawnLocal takes next.
    const out = this.encode(new ActorRef(this, this.id, this.#nextActor), h.o);
    if (out !== undefined) this.#wire.emitTraffic(h.o, DIRECT_REPLY, h.c, 1, out, h.o);
    this.spawnLocal(
      def.impl,
      { args: def.args, link: h.lk && watcher ? watcher : undefined },
      h.m && watcher ? { mid: h.m, watcher } : undefined,
    );
  }

  /** Spawn behaviour `name` here; `link`/`monitor` (a local watcher) are set before it runs. */
  #spawnDefined(
    name: string,
    args: unknown,
    link: AnyActorRef | undefined,
    monitor?: AnyActorRef,
  ): AnyActorRef {
    const def = this.#behaviours.resolve(name, args);
    return this.spawnLocal(def.impl, { args: def.args, link, monitor });
  }

  /** */
  spawnRemote(
    nodeId: string,
    name: string,
    args: unknown,
    from: Actor | undefined,
    opts: { link?: boolean; monitor?: boolean; timeout?: number },
  ): Promise<AnyActorRef> {
    if (nodeId === this.id) {
      try {
        const ref = this.#spawnDefined(
          name,
          args,
          opts.link && from ? from.ref : undefined,
          opts.monitor && from ? from.ref : undefined,
        );
        return Promise.resolve(ref);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (!this.#wire.route(nodeId))
      return Promise.reject(new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`));
    let payload: string;
    try {
      payload = this.#codec.encode(args);
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    const mid = opts.monitor && from ? this.#actorLinks.newMonitorId() : '';
    return this.#pending(
      nodeId,
      opts.timeout,
      (callId) => {
        const e = this.#sessions.current(nodeId);
        const head = JSON.stringify({
          t: 'sp',
          n: nodeId,
          o: this.id,
          h: 0,
          c: callId,
          b: name,
          w: from?.id ?? 0,
          lk: opts.link && from ? 1 : 0,
          m: mid,
          e,
        });
        const failed = this.#wire.emit(nodeId, head, payload, {
          to: `${nodeId}:spawn:${name}`,
          droppable: true,
        });
        if (failed === 'unreachable')
          return new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`);
        if (failed === 'frame-too-large')
          return new TroupeError(
            'FRAME_TOO_LARGE',
            `arguments of the spawn of "${name}" exceed the frame limit`,
          );
        if (failed === 'overflow') return this.#wire.congested(this.#wire.route(nodeId)!);
        return undefined;
      },
      (value) => {
        // Runs synchronously on the reply, before any DOWN/EXIT that follows it on the wire.
        if (!(value instanceof ActorRef) || !from || !from.alive) return;
        this.#actorLinks.spawned(from, value, !!opts.link, mid);
      },
    ) as Promise<AnyActorRef>;
  }

  // ---------------------------------------------------------------------------------------
  // Delivery, calls, replies

  /** RefHost */
  sendTo(ref: AnyActorRef, msg: unknown, options?: SendOptions): void {
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor === undefined) {
        this.deadLetter(ref.key, 'no-actor', msg);
        return;
      }
      this.#deliver(actor, msg, 0, this.id);
      return;
    }
    const payload =
      options?.transfer === undefined
        ? this.encode(msg, ref.key)
        : this.#encodeFor(ref.node, msg, options.transfer, ref.key);
    if (payload === undefined) return;
    this.#wire.emitTraffic(ref.node, DIRECT_SEND, ref.id, 0, payload, ref.key, msg, true);
  }

  /**
   * Encode `value` for `node` with a transfer list: its objects travel beside the envelope when
   * the node is a direct peer over a link that can move them, else the value is copied whole.
   * `to` set: a failure is a `not-serializable` dead letter (undefined); unset: it throws.
   */
  #encodeFor(
    node: string,
    value: unknown,
    transfer: readonly object[],
    to?: string,
  ): string | undefined {
    try {
      const link = this.#wire.route(node);
      const conn = link?.peer === node ? link.conn : undefined;
      return (
        encodeTransfer(conn, value, transfer, (v) => this.#codec.encode(v)) ??
        this.#codec.encode(value)
      );
    } catch (err) {
      if (to === undefined) throw toTroupeError(err, 'SERIALIZATION');
      this.deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** Decode an incoming payload (one whose objects travel beside it takes them from its link). */
  #decode(payload: string): unknown {
    if (payload.charCodeAt(0) !== TRANSFER_PREFIX) return this.#codec.decode(payload);
    return decodeTransfer(payload, this.#wire.decodingLink?.conn, (p) => this.#codec.decode(p));
  }

  /**
   * RefHost: an awaited send. Waits for end-to-end credit toward the target's node (granted
   * back as the target takes the messages), then sends, never dropped for congestion.
   */
  async sendAwaitTo(ref: AnyActorRef, msg: unknown, options?: SendAwaitOptions): Promise<void> {
    if (this.#shut) throw new TroupeError('SHUTDOWN', 'node is shut down');
    const signal = options?.signal;
    if (signal?.aborted) throw new TroupeError('ABORTED', 'send aborted', { cause: signal.reason });
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor === undefined) throw new TroupeError('NO_ACTOR', `no actor ${ref.key}`);
      this.#deliver(actor, msg, 0, this.id);
      return;
    }
    if (!this.#wire.route(ref.node))
      throw new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`);
    let payload: string;
    try {
      payload =
        options?.transfer === undefined
          ? this.#codec.encode(msg)
          : this.#encodeFor(ref.node, msg, options.transfer)!;
    } catch (err) {
      throw toTroupeError(err, 'SERIALIZATION');
    }
    const bytes = payload.length;
    const wait = this.#credit.acquire(ref.node, bytes, signal);
    if (wait !== undefined) await wait;
    const header = JSON.stringify({ t: 's', n: ref.node, o: this.id, h: 0, a: ref.id, f: 1 });
    const failed = this.#wire.emit(ref.node, header, payload, { to: ref.key, message: msg });
    if (failed === undefined) return;
    this.#credit.release(ref.node, bytes);
    if (failed === 'frame-too-large')
      throw new TroupeError(
        'FRAME_TOO_LARGE',
        `message of ${payload.length} chars exceeds the frame limit`,
      );
    throw new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`);
  }

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
    this.#actors.get(id)?.cancelCall(origin, callId);
  }

  /** RefHost */
  exitTo(ref: AnyActorRef, reason: unknown, sender?: Actor): void {
    const from = (sender ?? this.#scheduler.running)?.ref;
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor) this.#actorLinks.exitSignal(actor, from, reason, undefined, false);
      return;
    }
    this.#actorLinks.sendExit(ref, this.id, from?.id ?? 0, reason, undefined, false);
  }

  /** */
  call(
    ref: AnyActorRef,
    msg: unknown,
    options: CallOptions | undefined,
    from: Actor | undefined,
  ): Promise<unknown> {
    const caller = from ?? this.#scheduler.running;
    if (caller && ref.node === this.id && ref.id === caller.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    const signal = options?.signal;
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (!actor) return Promise.reject(new TroupeError('NO_ACTOR', `no actor ${ref.key}`));
      const cancel = signal && {
        signal,
        cancel: (callId: number) => this.inCancel(ref.id, this.id, callId),
      };
      return this.#pending(
        this.id,
        options?.timeout,
        (callId) => {
          this.#deliver(actor, msg, callId, this.id);
          return undefined;
        },
        undefined,
        cancel,
      );
    }
    if (!this.#wire.route(ref.node))
      return Promise.reject(new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`));
    let payload: string;
    try {
      payload =
        options?.transfer === undefined
          ? this.#codec.encode(msg)
          : this.#encodeFor(ref.node, msg, options.transfer)!;
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    // A cancelled call tells the callee (`ca`), so it drops the call and aborts `ctx.signal`.
    const cancel = signal && {
      signal,
      cancel: (callId: number) => {
        this.#wire.emit(
          ref.node,
          JSON.stringify({ t: 'ca', n: ref.node, o: this.id, h: 0, a: ref.id, c: callId }),
          undefined,
          { to: ref.key },
        );
      },
    };
    return this.#pending(
      ref.node,
      options?.timeout,
      (callId) => this.#wire.sendCall(ref.node, ref.id, callId, payload),
      undefined,
      cancel,
    );
  }

  /** Register a pending call, then run `start(callId)`; a returned error rejects at once. */
  #pending(
    target: string,
    timeout: number | undefined,
    start: (callId: number) => TroupeError | undefined,
    onReply?: (v: unknown) => void,
    abort?: { signal: AbortSignal; cancel: (callId: number) => void },
  ): Promise<unknown> {
    if (this.#calls.size >= this.options.maxPendingCalls) {
      return Promise.reject(
        new TroupeError(
          'MAILBOX_FULL',
          `node ${this.id} has ${this.#calls.size} calls pending (maxPendingCalls)`,
        ),
      );
    }
    return this.#calls.open(target, timeout ?? this.options.callTimeout, start, onReply, abort);
  }

  /**
   * Validate and put a message in an actor's mailbox. `callId` 0 means a plain send.
   */
  #deliver(actor: Actor, msg: unknown, callId: number, replyNode: string): void {
    const schema = actor.schema;
    // Behaviours validate when they take the message (see Actor); processes on arrival.
    if (schema !== undefined && actor.validatesOnArrival) {
      const r = schema.safeParse(msg);
      if (!r.success) {
        this.#invalid(actor, r.error.issues, callId, replyNode);
        return;
      }
      msg = r.data;
    }
    const item = callId ? new CallEnvelope(msg, callId, replyNode) : msg;
    if (!actor.enqueue(item)) {
      // A flood into a full mailbox must stay cheap: build the error (a stack capture) only if used.
      if (!callId && !this.events.has('deadLetter')) return;
      const error = new TroupeError(
        'MAILBOX_FULL',
        `mailbox of ${actor.ref.key} is full (${actor.maxMailbox})`,
      );
      this.deadLetter(actor.ref.key, 'mailbox-full', msg, error);
      if (callId) this.#replyTo(replyNode, callId, false, error);
    }
  }

  #invalid(actor: Actor, issues: unknown, callId: number, replyNode: string): void {
    const error = new TroupeError(
      'INVALID_MESSAGE',
      `message rejected by the schema of ${actor.ref.key}`,
      { details: issues },
    );
    this.events.emit('invalidMessage', { to: actor.ref.key, error });
    if (callId) this.#replyTo(replyNode, callId, false, error);
  }

  /** a behaviour's schema rejected a message it took from its mailbox */
  invalid(actor: Actor, issues: unknown, call: CallEnvelope | undefined): void {
    if (call) call.done = true;
    this.#invalid(actor, issues, call?.callId ?? 0, call?.replyNode ?? this.id);
  }

  /** answer a call */
  reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void {
    call.done = true;
    // A handler that answers with an async iterable serves a stream (see core/stream-serve.ts).
    if (ok && isAsyncIterable(value)) value = serveStream(this.node, value);
    this.#replyTo(call.replyNode, call.callId, ok, value, transfer);
  }

  #replyTo(
    node: string,
    callId: number,
    ok: boolean,
    value: unknown,
    transfer?: readonly object[],
  ): void {
    if (node === this.id) {
      this.#calls.settle(callId, ok, value);
      return;
    }
    if (!ok) {
      this.replyError(node, callId, value as TroupeError);
      return;
    }
    let payload: string;
    try {
      payload =
        transfer === undefined
          ? this.#codec.encode(value)
          : this.#encodeFor(node, value, transfer)!;
    } catch (err) {
      this.replyError(node, callId, toTroupeError(err, 'SERIALIZATION'));
      return;
    }
    this.#wire.emitTraffic(node, DIRECT_REPLY, callId, 1, payload, node);
  }

  /** reject call `callId` of `node` with `error` */
  replyError(node: string, callId: number, error: TroupeError): void {
    if (node === this.id) {
      this.#calls.settle(callId, false, error);
      return;
    }
    const payload = this.#codec.encode(
      error.toData(this.options.exposeStacks) as unknown as ErrorData,
    );
    this.#wire.emitTraffic(node, DIRECT_REPLY, callId, 0, payload, node);
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
    this.#actors.delete(actor.id);
    this.#actorLinks.forget(actor);
    const ref = actor.ref;
    for (const c of calls) {
      c.done = true;
      this.#replyTo(
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
    this.#wire.stopRetiring();
    for (const actor of [...this.#actors.values()]) this.exit(actor, 'shutdown');
    // Settle calls before the links close: closing them would reject these with NODE_DOWN.
    this.#calls.rejectAll(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    this.#credit.close(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    this.#wire.stopSwitches();
    // Let the exit/DOWN envelopes leave before the links close.
    await new Promise<void>((r) => queueMicrotask(r));
    await this.#registry.stopBackend().catch(() => {});
    await this.#wire.close();
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

import type { z } from 'zod';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { ActorRef, type CallOptions, type RefHost, type SendOptions } from './actor-ref.ts';
import { Actor, CallEnvelope, Down, NameLost, isErrorReason, type ExitReason, type SystemMessage } from './actor.ts';
import { ActorLinks } from './actor-links.ts';
import { CallTable } from './call-table.ts';
import { systemClock, type Clock } from './clock.ts';
import { Codec } from './codec.ts';
import { TroupeError, toTroupeError, type ErrorData } from './errors.ts';
import { Emitter } from './events.ts';
import type { Link } from './link.ts';
import { DIRECT_REPLY, DIRECT_SEND, NODE_ID_RULE, isValidNodeId, type EnvelopeHeader } from './protocol.ts';
import { SessionBook } from './session.ts';
import { Registry } from './registry.ts';
import { MAX_ROUTES, Router } from './router.ts';
import { Scheduler } from './scheduler.ts';
import { openStream, type StreamOptions, type StreamReader } from './stream.ts';
import { isAsyncIterable, serveStream } from './stream-serve.ts';
import { decodeTransfer, encodeTransfer, TRANSFER_PREFIX } from './transfer.ts';
import type { Connection } from './transport.ts';
import { DEFAULTS, type DeadLetterReason, type NodeEvents, type NodeOptions, type ResolvedOptions } from './node-options.ts';
import { BehaviourTable, type Behaviour, type ProcessFn, type RemoteSpawnOptions, type SpawnOptions } from './behaviour.ts';

export { behaviour } from './behaviour.ts';
export type { Behaviour, ChildSpawnOptions, ProcessFn, RemoteSpawnOptions, SpawnOptions } from './behaviour.ts';
export type { DeadLetterReason, NodeEvents, NodeOptions } from './node-options.ts';

const NO_OPTIONS: SpawnOptions = Object.freeze({});

/**
 * A troupe node: one runtime instance with its actors, links to peer nodes, routes and its view
 * of the cluster registry. Create one with {@link createNode}.
 *
 * The node holds the actor side (spawning, delivery, calls and replies, the registry API, exits)
 * and hands the rest to its parts: {@link Router} (links, routes, forwarding, incoming envelopes)
 * with its {@link Connector} (listening, dialing), {@link ActorLinks} (links and monitors between
 * actors), {@link CallTable} (pending calls and their timeouts) and {@link Scheduler} (the run
 * queue).
 */
export class Node implements RefHost {
  /** This node's id, unique in the cluster. */
  readonly id: string;
  /** Changes each time a node starts, so peers tell a restart from a reconnect. */
  readonly incarnation: string;
  /** Typed events: dead letters, invalid messages, links and nodes up/down, protocol errors. */
  readonly events: Emitter<NodeEvents>;
  readonly clock: Clock;
  readonly options: ResolvedOptions;

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
  #sessions = new SessionBook();
  #registry: Registry;
  #behaviours: BehaviourTable;
  #codec: Codec;
  #router: Router;
  #actorLinks: ActorLinks;
  #scheduler = new Scheduler();
  #shutdown = false;

  constructor(options: NodeOptions = {}) {
    if (options.name !== undefined && !isValidNodeId(options.name)) {
      throw new TroupeError('PROTOCOL_ERROR', `invalid node id ${JSON.stringify(String(options.name).slice(0, 200))}: ${NODE_ID_RULE}`);
    }
    this.id = options.name ?? `node-${bytesToHex(randomBytes(4))}`;
    this.incarnation = bytesToHex(randomBytes(6));
    this.clock = options.clock ?? systemClock;
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof ResolvedOptions)[]) {
      if (options[k] !== undefined) (o as Record<string, unknown>)[k] = options[k];
    }
    this.options = o;
    this.events = new Emitter<NodeEvents>((error) => this.events.emit('listenerError', { error }));
    this.#calls = new CallTable(this.clock);
    this.#behaviours = new BehaviourTable(this.id);
    this.#codec = new Codec((node, id, addrs) => this.#bindRef(node, id, addrs), { maxDepth: o.maxDepth }, (node) => this.#router.addressesFor(node));
    this.#registry = new Registry({
      id: this.id,
      broadcast: (text, except) => this.#router.broadcast(text, except),
      sendOn: (link, text) => (link as Link).enqueue(text),
      lost: (name, loser, winner) => this.#nameLost(name, loser, winner),
      // Through #bindRef: a name learned from a link also teaches the route to its node.
      refFor: (node, id) => this.#bindRef(node, id, undefined),
    }, options.registry);
    const d = options.discovery;
    this.#router = new Router(this, {
      sessions: this.#sessions,
      registry: this.#registry,
      transports: options.transports ?? [],
      discoveries: d === undefined ? [] : Array.isArray(d) ? [...d] : [d],
    });
    this.#actorLinks = new ActorLinks(this, this.#actors, this.#sessions, this.#router, this.#codec);
    this.#registry.startBackend((err) => this.events.emit('discoveryError', { discovery: `registry:${options.registry?.name}`, error: toTroupeError(err, 'TRANSPORT_CLOSED') }));
  }

  // ---------------------------------------------------------------------------------------
  // Actors

  /**
   * Spawn an actor on this node from a process function or a behaviour; or, with a node id and
   * a behaviour name, on another node (see {@link Node.define}).
   * @throws {TroupeError} `NAME_TAKEN` when `options.name` is taken.
   * @example
   * const echo = node.spawn(async (self) => { for (;;) self.reply(await self.receive()) })
   */
  spawn<S extends z.ZodType>(fn: ProcessFn<z.output<S>>, options: SpawnOptions & { schema: S }): ActorRef<z.input<S>>;
  spawn<M, R = unknown, I = M>(fn: Behaviour<M, any, any, I>, options?: SpawnOptions): ActorRef<I, R>;
  spawn<M = unknown>(fn: ProcessFn<M>, options?: SpawnOptions): ActorRef<M>;
  spawn<M = unknown>(nodeId: string, behaviour: string, args?: unknown, options?: RemoteSpawnOptions): Promise<ActorRef<M>>;
  spawn(
    what: ProcessFn<any> | Behaviour<any, any, any> | string,
    a?: SpawnOptions | string,
    args?: unknown,
    remote?: RemoteSpawnOptions,
  ): ActorRef<any, any> | Promise<ActorRef<any, any>> {
    if (typeof what === 'string') {
      const watcher = remote?.link ?? remote?.monitor;
      const actor = watcher ? this.#actors.get(watcher.id) : undefined;
      if (watcher && (watcher.node !== this.id || !actor)) {
        return Promise.reject(new TroupeError('NO_ACTOR', 'link/monitor of a remote spawn must be a live local actor'));
      }
      return this._spawnRemote(what, a as string, args, actor, {
        link: !!remote?.link,
        monitor: !!remote?.monitor,
        timeout: remote?.timeout,
      });
    }
    return this.#spawnLocal(what, (a as SpawnOptions | undefined) ?? NO_OPTIONS);
  }

  /** `remoteWatch`: a monitor held by another node's actor, set before the actor runs (remote spawn). */
  #spawnLocal(what: ProcessFn<any> | Behaviour<any, any, any>, options: SpawnOptions, remoteWatch?: { mid: string; watcher: ActorRef<any, any> }): ActorRef<any, any> {
    if (this.#shutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
    if (options.name !== undefined && this.#registry.get(options.name)) {
      throw new TroupeError('NAME_TAKEN', `name "${options.name}" is already registered`);
    }
    const id = this.#nextActor++;
    const ref = new ActorRef(this, this.id, id);
    const isFn = typeof what === 'function';
    const actor = new Actor(this, id, ref, isFn ? 'process' : 'behaviour', options.maxMailbox ?? this.options.maxMailbox);
    actor.schema = options.schema ?? (isFn ? undefined : what.schema);
    if (options.trapExit) actor.trapExit = true;
    this.#actors.set(id, actor);
    if (options.name !== undefined) this.register(options.name, ref);
    if (remoteWatch) this.#actorLinks.watchedFrom(actor, remoteWatch.mid, remoteWatch.watcher);
    if (options.link) this.#actorLinks.link(actor, options.link);
    if (options.monitor) {
      const watcher = options.monitor.node === this.id ? this.#actors.get(options.monitor.id) : undefined;
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
  define<A>(name: string, argsSchema: z.ZodType<A> | undefined, impl: Behaviour<any, any, A> | ProcessFn<any>): void {
    this.#behaviours.define(name, argsSchema, impl);
  }

  /** The names in this node's behaviour table. */
  behaviours(): string[] {
    return this.#behaviours.names();
  }

  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: ActorRef<any, any>): boolean {
    return ref.node === this.id && this.#actors.has(ref.id);
  }

  /** Number of live actors on this node. */
  get actorCount(): number {
    return this.#actors.size;
  }

  /**
   * A ref for `{ node, id }` bound to this node (for refs that arrived as plain data).
   * @throws {TroupeError} `PROTOCOL_ERROR` when `node` is not a valid node id (docs/protocol.md).
   */
  ref<M = unknown>(node: string, id: number): ActorRef<M> {
    if (!isValidNodeId(node)) throw new TroupeError('PROTOCOL_ERROR', `invalid node id in a ref: ${NODE_ID_RULE}`);
    return new ActorRef(this, node, id);
  }

  /** Send to a ref or a registered name. Never throws for an unreachable target. */
  send(to: ActorRef<any, any> | string, msg: unknown, options?: SendOptions): void {
    if (typeof to === 'string') {
      const ref = this.#registry.get(to);
      if (!ref) {
        this._deadLetter(to, 'no-name', msg);
        return;
      }
      this.sendTo(ref, msg, options);
      return;
    }
    this.sendTo(to, msg, options);
  }

  /** Call a ref or a registered name. @throws {TroupeError} `NO_ACTOR` for an unknown name, else as `ActorRef.call`. */
  call<R = unknown>(to: ActorRef<any, any> | string, msg: unknown, options?: CallOptions): Promise<R> {
    const ref = typeof to === 'string' ? this.#registry.get(to) : to;
    if (!ref) return Promise.reject(new TroupeError('NO_ACTOR', `no actor is registered as "${to as string}"`));
    return this._call(ref, msg, options, undefined) as Promise<R>;
  }

  /** Send an exit signal to `ref` from outside any actor. */
  exit(ref: ActorRef<any, any>, reason: ExitReason): void {
    this.exitTo(ref, reason);
  }

  /** Kill `ref` (untrappable). */
  kill(ref: ActorRef<any, any>): void {
    this.exitTo(ref, 'kill');
  }

  /**
   * Call `onDown` once when `ref` ends (with `noproc` if it is not alive, `noconnection` if its
   * node is lost). Returns a function that cancels the watch.
   */
  watch(ref: ActorRef<any, any>, onDown: (down: Down) => void, onCancel?: (err: TroupeError) => void): () => void {
    const watcher = this.#spawnLocal(
      async (self) => {
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
      },
      {},
    );
    return () => this.exitTo(watcher, 'kill');
  }

  /**
   * Resolve with the DOWN message of `ref` (see {@link Node.watch}).
   * @throws {TroupeError} `SHUTDOWN` when this node shuts down first.
   */
  waitDown(ref: ActorRef<any, any>): Promise<Down> {
    return new Promise((resolve, reject) =>
      this.watch(ref, resolve, () => reject(new TroupeError('SHUTDOWN', `node ${this.id} shut down while waiting for ${ref.key}`))),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Registry

  /**
   * Register `ref` under `name`, cluster-wide. Returns false if this node already sees the name
   * taken. A concurrent claim on another node is resolved deterministically (see README); the
   * loser's actor receives a `NAME_LOST` message.
   */
  register(name: string, ref: ActorRef<any, any>): boolean {
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

  /** The ref registered under `name`, as this node sees the cluster. */
  whereis<M = unknown>(name: string): ActorRef<M> | undefined {
    return this.#registry.get(name);
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
  registered(): Map<string, ActorRef<any, any>> {
    return new Map(this.#registry.entries());
  }

  #nameLost(name: string, loser: ActorRef<any, any>, winner: ActorRef<any, any>): void {
    const actor = this.#actors.get(loser.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    this.events.emit('nameConflict', { name, winner, loser });
    actor?.enqueueSystem(new NameLost(name, winner));
  }

  // ---------------------------------------------------------------------------------------
  // Links between nodes (see Router and Connector)

  /**
   * Attach an open connection (from any adapter) and run the handshake on it. Resolves with the
   * peer's node id once the link is up.
   * @throws {TroupeError} `UNAUTHORIZED`, `VERSION_MISMATCH`, `TRANSPORT_CLOSED`, … when it fails.
   */
  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    return this.#router.attach(conn, initiator, options);
  }

  /**
   * Dial `address` with the first transport that understands it and run the handshake.
   * Resolves with the peer's node id.
   */
  connect(address: string): Promise<string> {
    return this.#router.connector.connect(address);
  }

  /**
   * Keep a link to a seed address: dial it now and redial with backoff (100 ms doubling to 5 s)
   * whenever the link is lost, until shutdown. Resolves with the seed's node id when first up;
   * membership gossip then connects this node to the members the seed knows.
   */
  join(address: string): Promise<string> {
    return this.#router.connector.join(address);
  }

  /** Start every transport that can listen; resolves with the addresses peers can dial. */
  listen(): Promise<string[]> {
    return this.#router.connector.listen();
  }

  /** The addresses this node listens on. */
  get addresses(): string[] {
    return [...this.#router.connector.listenAddrs];
  }

  /** Ids of the nodes this node can reach now (directly or routed). */
  nodes(): string[] {
    return this.#router.nodes();
  }

  /** Ids of the nodes this node has a direct link to. */
  peers(): string[] {
    return this.#router.peers();
  }

  /** Listen addresses a peer announced (for transitive connection). */
  addressesOf(node: string): string[] {
    return this.#router.addressesOf(node);
  }

  /** Whether `node` is reachable now. */
  isReachable(node: string): boolean {
    return this.#router.isReachable(node);
  }

  /**
   * Link statistics per direct peer (for the cluster view). `queued`: characters of envelopes
   * waiting in the link; `backlog`: what the transport or the peer has not yet taken (see
   * `highWaterMark`); `holding`: the link is holding envelopes back (flow control).
   */
  linkStats(): { node: string; label: string; envelopesOut: number; framesOut: number; framesIn: number; queued: number; backlog: number; holding: boolean }[] {
    return this.#router.linkStats();
  }

  /** Close the direct link to `node` (its monitors fire as for a lost node). */
  disconnect(node: string): void {
    this.#router.disconnect(node);
  }

  /**
   * Report when `node` goes up or down (reachability). Fires `down` at once (asynchronously) if
   * it is not reachable now. Returns a function that stops reporting.
   */
  monitorNode(node: string, fn: (e: { node: string; up: boolean; reason?: string }) => void): () => void {
    return this.#router.monitorNode(node, fn);
  }

  /**
   * @internal Router: the session with `node` ended (core/session.ts): settle every call, monitor
   * and link with it — calls `NODE_DOWN`, DOWN / exit `noconnection`.
   */
  _settleSession(node: string, reason: string): void {
    this.#calls.dropNode(node, reason);
    this.#actorLinks.settle(node);
  }

  // ---------------------------------------------------------------------------------------
  // Encoding

  #bindRef(node: string, id: number, addrs: string[] | undefined): ActorRef<any, any> {
    this.#router.learnRef(node, addrs);
    return new ActorRef(this, node, id);
  }

  /** @internal encode `value` for `to`; undefined (and a `not-serializable` dead letter) if it cannot be. */
  _encode(value: unknown, to: string): string | undefined {
    try {
      return this.#codec.encode(value);
    } catch (err) {
      this._deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** @internal decode a payload for `to`; a failure is reported as an `invalidMessage` event. */
  _decodePayload(payload: string | undefined, to: string): { ok: true; value: unknown } | { ok: false; error: TroupeError } {
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

  /** @internal */
  _inSend(id: number, origin: string, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this._deadLetter(`${this.id}/${id}`, 'no-actor');
      return;
    }
    // The hot path: decode without a result object per message.
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.#decode(payload);
    } catch (err) {
      this.events.emit('invalidMessage', { to: actor.ref.key, error: toTroupeError(err, 'INVALID_MESSAGE') });
      return;
    }
    this.#deliver(actor, msg, 0, origin);
  }

  /** @internal */
  _inCall(id: number, origin: string, callId: number, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this._replyError(origin, callId, new TroupeError('NO_ACTOR', `no actor ${this.id}/${id}`));
      return;
    }
    const d = this._decodePayload(payload, actor.ref.key);
    if (!d.ok) {
      this._replyError(origin, callId, d.error);
      return;
    }
    this.#deliver(actor, d.value, callId, origin);
  }

  /** @internal */
  _inReply(callId: number, ok: 0 | 1, payload: string | undefined): void {
    if (!this.#calls.has(callId)) {
      this._deadLetter(`${this.id}#call${callId}`, 'late-reply');
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

  /** @internal */
  _inSpawn(h: Extract<EnvelopeHeader, { t: 'sp' }>, payload: string | undefined): void {
    const d = this._decodePayload(payload, `${this.id}:spawn:${h.b}`);
    if (!d.ok) return this._replyError(h.o, h.c, d.error);
    const watcher = h.w ? new ActorRef(this, h.o, h.w) : undefined;
    let def: { impl: ProcessFn<any>; args: unknown };
    try {
      if (this.#shutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
      def = this.#behaviours.resolve(h.b, d.value);
    } catch (err) {
      return this._replyError(h.o, h.c, toTroupeError(err));
    }
    // Reply before the actor runs: the caller sets up its side of the monitor/link when the
    // reply arrives, so a DOWN or EXIT from a failing init must follow the reply on the wire
    // (it then carries the real reason, not `noproc`). The ref is the id #spawnLocal takes next.
    const out = this._encode(new ActorRef(this, this.id, this.#nextActor), h.o);
    if (out !== undefined) this.#router.emitTraffic(h.o, DIRECT_REPLY, h.c, 1, out, h.o);
    this.#spawnLocal(def.impl, { args: def.args, link: h.lk && watcher ? watcher : undefined }, h.m && watcher ? { mid: h.m, watcher } : undefined);
  }

  /** Spawn behaviour `name` here; `link`/`monitor` (a local watcher) are set before it runs. */
  #spawnDefined(name: string, args: unknown, link: ActorRef<any, any> | undefined, monitor?: ActorRef<any, any>): ActorRef<any, any> {
    const def = this.#behaviours.resolve(name, args);
    return this.#spawnLocal(def.impl, { args: def.args, link, monitor });
  }

  /** @internal */
  _spawnRemote(
    nodeId: string,
    name: string,
    args: unknown,
    from: Actor | undefined,
    opts: { link?: boolean; monitor?: boolean; timeout?: number },
  ): Promise<ActorRef<any, any>> {
    if (nodeId === this.id) {
      try {
        const ref = this.#spawnDefined(name, args, opts.link && from ? from.ref : undefined, opts.monitor && from ? from.ref : undefined);
        return Promise.resolve(ref);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (!this.#router.route(nodeId)) return Promise.reject(new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`));
    let payload: string;
    try {
      payload = this.#codec.encode(args);
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    const mid = opts.monitor && from ? this.#actorLinks.newMonitorId() : '';
    return this.#pending(nodeId, opts.timeout, (callId) => {
      const e = this.#sessions.current(nodeId);
      const head = JSON.stringify({ t: 'sp', n: nodeId, o: this.id, h: 0, c: callId, b: name, w: from?.id ?? 0, lk: opts.link && from ? 1 : 0, m: mid, e });
      const failed = this.#router.emit(nodeId, head, payload, { to: `${nodeId}:spawn:${name}`, droppable: true });
      if (failed === 'unreachable') return new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`);
      if (failed === 'frame-too-large') return new TroupeError('FRAME_TOO_LARGE', `arguments of the spawn of "${name}" exceed the frame limit`);
      if (failed === 'overflow') return this.#router.congested(this.#router.route(nodeId)!);
      return undefined;
    }, (value) => {
      // Runs synchronously on the reply, before any DOWN/EXIT that follows it on the wire.
      if (!(value instanceof ActorRef) || !from || !from.alive) return;
      this.#actorLinks.spawned(from, value, !!opts.link, mid);
    }) as Promise<ActorRef<any, any>>;
  }

  // ---------------------------------------------------------------------------------------
  // Delivery, calls, replies

  /** @internal RefHost */
  sendTo(ref: ActorRef<any, any>, msg: unknown, options?: SendOptions): void {
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor === undefined) {
        this._deadLetter(ref.key, 'no-actor', msg);
        return;
      }
      this.#deliver(actor, msg, 0, this.id);
      return;
    }
    const payload = options?.transfer === undefined ? this._encode(msg, ref.key) : this.#encodeFor(ref.node, msg, options.transfer, ref.key);
    if (payload === undefined) return;
    this.#router.emitTraffic(ref.node, DIRECT_SEND, ref.id, 0, payload, ref.key, msg, true);
  }

  /**
   * Encode `value` for `node` with a transfer list: its objects travel beside the envelope when
   * the node is a direct peer over a link that can move them, else the value is copied whole.
   * `to` set: a failure is a `not-serializable` dead letter (undefined); unset: it throws.
   */
  #encodeFor(node: string, value: unknown, transfer: readonly object[], to?: string): string | undefined {
    try {
      const link = this.#router.route(node);
      const conn = link?.peer === node ? link.conn : undefined;
      return encodeTransfer(conn, value, transfer, (v) => this.#codec.encode(v)) ?? this.#codec.encode(value);
    } catch (err) {
      if (to === undefined) throw toTroupeError(err, 'SERIALIZATION');
      this._deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** Decode an incoming payload (one whose objects travel beside it takes them from its link). */
  #decode(payload: string): unknown {
    if (payload.charCodeAt(0) !== TRANSFER_PREFIX) return this.#codec.decode(payload);
    return decodeTransfer(payload, this.#router.decodingLink?.conn, (p) => this.#codec.decode(p));
  }

  /** @internal RefHost */
  callTo(ref: ActorRef<any, any>, msg: unknown, options?: CallOptions): Promise<unknown> {
    return this._call(ref, msg, options, undefined);
  }

  /** @internal RefHost */
  streamFrom(ref: ActorRef<any, any>, msg: unknown, options?: StreamOptions): StreamReader<unknown> {
    return openStream(this, ref, msg, options);
  }

  /**
   * Open a stream from `to` (a ref or a registered name); see {@link ActorRef.stream}.
   * @example
   * for await (const chunk of node.stream<string>('lines', { file: 'a.txt' })) console.log(chunk)
   */
  stream<T = unknown>(to: ActorRef<any, any> | string, msg: unknown, options?: StreamOptions): StreamReader<T> {
    const ref = typeof to === 'string' ? this.#registry.get(to) : to;
    return openStream(this, ref ?? to, msg, options) as StreamReader<T>;
  }

  /** @internal a call was cancelled by its caller (`ca`, or a local abort) */
  _inCancel(id: number, origin: string, callId: number): void {
    this.#actors.get(id)?.cancelCall(origin, callId);
  }

  /** @internal RefHost */
  exitTo(ref: ActorRef<any, any>, reason: unknown, sender?: Actor): void {
    const from = (sender ?? this.#scheduler.running)?.ref;
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor) this.#actorLinks.exitSignal(actor, from, reason, undefined, false);
      return;
    }
    this.#actorLinks.sendExit(ref, this.id, from?.id ?? 0, reason, undefined, false);
  }

  /** @internal */
  _call(ref: ActorRef<any, any>, msg: unknown, options: CallOptions | undefined, from: Actor | undefined): Promise<unknown> {
    const caller = from ?? this.#scheduler.running;
    if (caller && ref.node === this.id && ref.id === caller.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    const signal = options?.signal;
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (!actor) return Promise.reject(new TroupeError('NO_ACTOR', `no actor ${ref.key}`));
      const cancel = signal && { signal, cancel: (callId: number) => this._inCancel(ref.id, this.id, callId) };
      return this.#pending(this.id, options?.timeout, (callId) => {
        this.#deliver(actor, msg, callId, this.id);
        return undefined;
      }, undefined, cancel);
    }
    if (!this.#router.route(ref.node)) return Promise.reject(new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`));
    let payload: string;
    try {
      payload = options?.transfer === undefined ? this.#codec.encode(msg) : this.#encodeFor(ref.node, msg, options.transfer)!;
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    // A cancelled call tells the callee (`ca`), so it drops the call and aborts `ctx.signal`.
    const cancel = signal && {
      signal,
      cancel: (callId: number) => {
        this.#router.emit(ref.node, JSON.stringify({ t: 'ca', n: ref.node, o: this.id, h: 0, a: ref.id, c: callId }), undefined, { to: ref.key });
      },
    };
    return this.#pending(ref.node, options?.timeout, (callId) => this.#router.sendCall(ref.node, ref.id, callId, payload), undefined, cancel);
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
      return Promise.reject(new TroupeError('MAILBOX_FULL', `node ${this.id} has ${this.#calls.size} calls pending (maxPendingCalls)`));
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
      const error = new TroupeError('MAILBOX_FULL', `mailbox of ${actor.ref.key} is full (${actor.maxMailbox})`);
      this._deadLetter(actor.ref.key, 'mailbox-full', msg, error);
      if (callId) this.#replyTo(replyNode, callId, false, error);
    }
  }

  #invalid(actor: Actor, issues: unknown, callId: number, replyNode: string): void {
    const error = new TroupeError('INVALID_MESSAGE', `message rejected by the schema of ${actor.ref.key}`, { details: issues });
    this.events.emit('invalidMessage', { to: actor.ref.key, error });
    if (callId) this.#replyTo(replyNode, callId, false, error);
  }

  /** @internal a behaviour's schema rejected a message it took from its mailbox */
  _invalid(actor: Actor, issues: unknown, call: CallEnvelope | undefined): void {
    if (call) call.done = true;
    this.#invalid(actor, issues, call?.callId ?? 0, call?.replyNode ?? this.id);
  }

  /** @internal answer a call (`transfer`: the reply's transfer list) */
  _reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void {
    call.done = true;
    // A handler that answers with an async iterable serves a stream (see core/stream-serve.ts).
    if (ok && isAsyncIterable(value)) value = serveStream(this, value);
    this.#replyTo(call.replyNode, call.callId, ok, value, transfer);
  }

  #replyTo(node: string, callId: number, ok: boolean, value: unknown, transfer?: readonly object[]): void {
    if (node === this.id) {
      this.#calls.settle(callId, ok, value);
      return;
    }
    if (!ok) {
      this._replyError(node, callId, value as TroupeError);
      return;
    }
    let payload: string;
    try {
      payload = transfer === undefined ? this.#codec.encode(value) : this.#encodeFor(node, value, transfer)!;
    } catch (err) {
      this._replyError(node, callId, toTroupeError(err, 'SERIALIZATION'));
      return;
    }
    this.#router.emitTraffic(node, DIRECT_REPLY, callId, 1, payload, node);
  }


  /** @internal reject call `callId` of `node` with `error` */
  _replyError(node: string, callId: number, error: TroupeError): void {
    if (node === this.id) {
      this.#calls.settle(callId, false, error);
      return;
    }
    const payload = this.#codec.encode(error.toData(this.options.exposeStacks) as unknown as ErrorData);
    this.#router.emitTraffic(node, DIRECT_REPLY, callId, 0, payload, node);
  }

  /** @internal report a `deadLetter` event (only built when someone listens) */
  _deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void {
    if (this.events.has('deadLetter')) this.events.emit('deadLetter', { to, reason, message, error });
  }

  /** @internal a behaviour without `info` got a system message */
  _dropSystem(actor: Actor, msg: SystemMessage): void {
    this._deadLetter(actor.ref.key, 'system-message', msg);
  }

  // ---------------------------------------------------------------------------------------
  // Scheduling

  /** @internal put a behaviour actor on the run queue */
  _schedule(actor: Actor): void {
    this.#scheduler.schedule(actor);
  }

  // ---------------------------------------------------------------------------------------
  // Links, monitors, exits

  /** @internal the links and monitors between actors (for ActorContext, and the Router's x, l/u, m, dm, d) */
  get _actorLinks(): ActorLinks {
    return this.#actorLinks;
  }

  /** @internal end an actor: settle its calls, fire its links and monitors, drop its names */
  _exit(actor: Actor, reason: ExitReason, result?: unknown): void {
    if (!actor.alive) return;
    const calls = actor.teardown();
    this.#actors.delete(actor.id);
    this.#actorLinks.forget(actor);
    const ref = actor.ref;
    for (const c of calls) {
      c.done = true;
      this.#replyTo(c.replyNode, c.callId, false, new TroupeError('ACTOR_EXITED', `actor ${ref.key} exited (${describeReason(reason)}) before replying`, { details: { reason } }));
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
    if (this.#shutdown) return;
    this.#shutdown = true;
    this.#router.stopRetiring();
    for (const actor of [...this.#actors.values()]) this._exit(actor, 'shutdown');
    // Settle calls before the links close: closing them would reject these with NODE_DOWN.
    this.#calls.rejectAll(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    this.#router.stopSwitches();
    // Let the exit/DOWN envelopes leave before the links close.
    await new Promise<void>((r) => queueMicrotask(r));
    await this.#registry.stopBackend().catch(() => {});
    await this.#router.close();
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#shutdown;
  }
}

/** A random start below 2^30 for actor ids (see `Node#nextActor`). */
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

/**
 * Create a node.
 * @example
 * const node = createNode({ name: 'a', secret: 's3cret' })
 * const echo = node.spawn(async (self) => { for (;;) self.reply(await self.receive()) })
 * await echo.call('hi') // 'hi'
 */
export function createNode(options: NodeOptions = {}): Node {
  return new Node(options);
}

import type { z } from 'zod';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { ActorRef, type CallOptions, type RefHost } from './actor-ref.ts';
import {
  Actor,
  CallEnvelope,
  Down,
  Exit,
  NameLost,
  errorReason,
  isErrorReason,
  type ExitReason,
  type SystemMessage,
} from './actor.ts';
import { CallTable } from './call-table.ts';
import { systemClock, type Clock } from './clock.ts';
import { Codec } from './codec.ts';
import { TroupeError, toTroupeError, type ErrorData } from './errors.ts';
import { Emitter } from './events.ts';
import { Link, type LinkOwner, type LinkSettings } from './link.ts';
import { EnvelopeHeader, fastHeader, parseHeader, ENVELOPE_SEPARATOR, PAYLOAD_SEPARATOR, envelope, type RoutedHeader } from './protocol.ts';
import { SessionBook } from './session.ts';
import { Registry } from './registry.ts';
import { Scheduler } from './scheduler.ts';
import type { Connection, Transport } from './transport.ts';
import type { Discovery } from './discovery.ts';
import { DEFAULTS, type DeadLetterReason, type NodeEvents, type NodeOptions, type ResolvedOptions } from './node-options.ts';
import { BehaviourTable, type Behaviour, type ProcessFn, type RemoteSpawnOptions, type SpawnOptions } from './behaviour.ts';

export { behaviour } from './behaviour.ts';
export type { Behaviour, ChildSpawnOptions, ProcessFn, RemoteSpawnOptions, SpawnOptions } from './behaviour.ts';
export type { DeadLetterReason, NodeEvents, NodeOptions } from './node-options.ts';

const NO_OPTIONS: SpawnOptions = Object.freeze({});

/** Most routes a node keeps (bounds what hostile refs can add). */
const MAX_ROUTES = 10_000;
/** Most registry names a node accepts from its peers (its own actors may always register). */
const MAX_NAMES = 100_000;

/**
 * A troupe node: one runtime instance with its actors, links to peer nodes, routes and its view
 * of the cluster registry. Create one with {@link createNode}.
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

  #transports: Transport[];
  #listenAddrs: string[] = [];
  #actors = new Map<number, Actor>();
  /**
   * Actor ids start at a random point below 2^30 in each incarnation (a stand-in for Erlang's
   * "creation"): refs from a previous life of a node restarted under the same id reach no actor
   * (`NO_ACTOR`) instead of a stranger, unless the two lives' id ranges happen to overlap (for k
   * actors per life, a chance of about 2k/2^30). Ids stay small integers (V8 Smis up to 2^31),
   * which keeps actor tables and headers compact.
   */
  #nextActor = 1 + actorIdBase();
  #links = new Set<Link>();
  #direct = new Map<string, Link>();
  #routes = new Map<string, Link>();
  #reachable = new Set<string>();
  #addresses = new Map<string, string[]>();
  #calls: CallTable;
  #nextMonitor = 1;
  /** Monitors of this node's actors on other nodes; `s`: the target node's session count when made. */
  #remoteMonitors = new Map<string, { watcher: Actor; target: ActorRef<any, any>; s: number }>();
  #sessions = new SessionBook();
  #remoteBound = new Set<Actor>();
  #registry: Registry;
  #behaviours: BehaviourTable;
  #codec: Codec;
  #decodeLink: Link | undefined;
  #scheduler = new Scheduler();
  #nodeWatchers = new Map<string, Set<(e: { node: string; up: boolean; reason?: string }) => void>>();
  #quoted = new Map<string, string>();
  #shutdown = false;
  #owner: LinkOwner;
  #discoveries: Discovery[];
  #discoveriesStarted = new Set<Discovery>();

  constructor(options: NodeOptions = {}) {
    this.id = options.name ?? `node-${bytesToHex(randomBytes(4))}`;
    this.incarnation = bytesToHex(randomBytes(6));
    this.clock = options.clock ?? systemClock;
    const o = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof ResolvedOptions)[]) {
      if (options[k] !== undefined) (o as Record<string, unknown>)[k] = options[k];
    }
    this.options = o;
    this.#transports = options.transports ?? [];
    this.events = new Emitter<NodeEvents>((error) => this.events.emit('listenerError', { error }));
    this.#calls = new CallTable(this.clock);
    this.#behaviours = new BehaviourTable(this.id);
    this.#codec = new Codec((node, id, addrs) => this.#bindRef(node, id, addrs), { maxDepth: o.maxDepth }, (node) =>
      node === this.id ? this.#listenAddrs : this.#addresses.get(node),
    );
    this.#registry = new Registry({
      id: this.id,
      broadcast: (text, except) => {
        for (const l of this.#direct.values()) if (l !== except) l.enqueue(text);
      },
      sendOn: (link, text) => (link as Link).enqueue(text),
      lost: (name, loser, winner) => this.#nameLost(name, loser, winner),
      // Through #bindRef: a name learned from a link also teaches the route to its node.
      refFor: (node, id) => this.#bindRef(node, id, undefined),
    });
    this.#owner = this.#makeLinkOwner();
    const d = options.discovery;
    this.#discoveries = d === undefined ? [] : Array.isArray(d) ? [...d] : [d];
    // Started after createNode returns, so a listener added right after it sees a failure.
    if (this.#discoveries.length) queueMicrotask(() => this.#startDiscoveries());
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
    if (remoteWatch) {
      this.#sessions.tag(remoteWatch.watcher, remoteWatch.watcher.node);
      (actor.watchers ??= new Map()).set(remoteWatch.mid, remoteWatch.watcher);
      this.#remoteBound.add(actor);
    }
    if (options.link) this._link(actor, options.link);
    if (options.monitor) {
      const watcher = options.monitor.node === this.id ? this.#actors.get(options.monitor.id) : undefined;
      if (watcher) this._monitor(watcher, ref);
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

  /** A ref for `{ node, id }` bound to this node (for refs that arrived as plain data). */
  ref<M = unknown>(node: string, id: number): ActorRef<M> {
    return new ActorRef(this, node, id);
  }

  /** Send to a ref or a registered name. Never throws for an unreachable target. */
  send(to: ActorRef<any, any> | string, msg: unknown): void {
    if (typeof to === 'string') {
      const ref = this.#registry.get(to);
      if (!ref) {
        this.#deadLetter(to, 'no-name', msg);
        return;
      }
      this.sendTo(ref, msg);
      return;
    }
    this.sendTo(to, msg);
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
  // Links between nodes

  /**
   * Attach an open connection (from any adapter) and run the handshake on it. Resolves with the
   * peer's node id once the link is up.
   * @throws {TroupeError} `UNAUTHORIZED`, `VERSION_MISMATCH`, `TRANSPORT_CLOSED`, … when it fails.
   */
  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    if (this.#shutdown) {
      conn.close();
      return Promise.reject(new TroupeError('SHUTDOWN', 'node is shut down'));
    }
    if (!initiator) {
      const refused = this.#overConnectionLimits();
      if (refused) {
        // Refuse before any work (no Link, no nonce, no timer): a connection flood costs little.
        const error = new TroupeError('PROTOCOL_ERROR', `${refused}; refusing ${conn.label}`);
        this.events.emit('protocolError', { error, label: conn.label });
        conn.onframe = null;
        conn.send(JSON.stringify({ t: 'reject', code: error.code, message: refused }));
        conn.close();
        return Promise.reject(error);
      }
    }
    return this.#attachLink(conn, initiator, options.secret).up;
  }

  /** Why an accepted connection must be refused now (`maxConnections`, `maxUnauthenticated`), if it must. */
  #overConnectionLimits(): string | undefined {
    const { maxConnections, maxUnauthenticated } = this.options;
    if (this.#links.size >= maxConnections) return `too many connections (maxConnections ${maxConnections})`;
    let handshaking = 0;
    for (const l of this.#links) if (l.state === 'handshake' && !l.initiator) handshaking++;
    if (handshaking >= maxUnauthenticated) return `too many unauthenticated connections (maxUnauthenticated ${maxUnauthenticated})`;
    return undefined;
  }

  #attachLink(conn: Connection, initiator: boolean, secret?: string): { link: Link; up: Promise<string> } {
    let link!: Link;
    const up = new Promise<string>((resolve, reject) => {
      link = new Link(this.#owner, conn, initiator, secret);
      this.#pendingAttach.set(link, { resolve, reject });
      this.#links.add(link);
    });
    return { link, up };
  }

  #pendingAttach = new Map<Link, { resolve: (peer: string) => void; reject: (e: unknown) => void }>();

  /**
   * Dial `address` with the first transport that understands it and run the handshake.
   * Resolves with the peer's node id.
   */
  async connect(address: string): Promise<string> {
    if (this.#shutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
    const t = this.#transports.find((x) => x.canConnect(address));
    if (!t) throw new TroupeError('TRANSPORT_CLOSED', `no transport can dial "${address}"`);
    let conn: Connection;
    try {
      conn = await t.connect(address);
    } catch (err) {
      throw new TroupeError('TRANSPORT_CLOSED', `cannot connect to ${address}: ${(err as Error).message}`, { cause: err });
    }
    const link = this.#attachLink(conn, true, t.secret);
    this.#linkAddress.set(link.link, address);
    return link.up;
  }

  /**
   * Keep a link to a seed address: dial it now and redial with backoff (100 ms doubling to 5 s)
   * whenever the link is lost, until shutdown. Resolves with the seed's node id when first up;
   * membership gossip then connects this node to the members the seed knows.
   */
  join(address: string): Promise<string> {
    this.#seeds.add(address);
    return new Promise((resolve, reject) => {
      this.#redial(address, Infinity, resolve, reject);
    });
  }

  /** Addresses redialed forever. */
  #seeds = new Set<string>();
  /** Addresses with a dial in flight or a redial scheduled. */
  #dialing = new Set<string>();
  /** The address each dialed link was made to. */
  #linkAddress = new WeakMap<Link, string>();
  /** When a dial to a node last failed (to pace automatic dials). */
  #dialFailed = new Map<string, number>();

  #redial(address: string, deadline: number, onUp?: (peer: string) => void, onGiveUp?: (e: unknown) => void): void {
    if (this.#dialing.has(address)) return;
    this.#dialing.add(address);
    let attempt = 0;
    const tryOnce = (): void => {
      if (this.#shutdown) {
        this.#dialing.delete(address);
        onGiveUp?.(new TroupeError('SHUTDOWN', 'node is shut down'));
        return;
      }
      this.connect(address).then(
        (peer) => {
          this.#dialing.delete(address);
          onUp?.(peer);
        },
        (err: TroupeError) => {
          const permanent = err.code === 'UNAUTHORIZED' || err.code === 'VERSION_MISMATCH';
          if (permanent || this.clock.now() >= deadline || this.#shutdown) {
            this.#dialing.delete(address);
            onGiveUp?.(err);
            return;
          }
          const delay = Math.min(5000, 100 * 2 ** attempt++) * (0.75 + Math.random() / 2);
          this.clock.setTimeout(tryOnce, delay);
        },
      );
    };
    tryOnce();
  }

  /** Dial `node` directly if its addresses are known and a transport can reach them. */
  #autoDial(node: string): void {
    if (!this.options.autoConnect) return;
    this.#dialKnown(node);
  }

  /** Dial `node` at a known address unless linked, dialing, or a dial failed in the last 5 s. */
  #dialKnown(node: string): void {
    if (this.#shutdown || this.#direct.has(node) || node === this.id) return;
    const failed = this.#dialFailed.get(node);
    if (failed !== undefined && this.clock.now() - failed < 5000) return;
    const addrs = this.#addresses.get(node);
    const addr = addrs?.find((a) => this.#transports.some((t) => t.canConnect(a)));
    if (!addr || this.#dialing.has(addr)) return;
    this.#dialing.add(addr);
    this.connect(addr).then(
      () => this.#dialing.delete(addr),
      () => {
        this.#dialing.delete(addr);
        this.#dialFailed.set(node, this.clock.now());
      },
    );
  }

  #startDiscoveries(): void {
    for (const d of this.#discoveries) {
      if (this.#shutdown) return;
      this.#discoveriesStarted.add(d);
      const report = (err: unknown): void => this.events.emit('discoveryError', { discovery: d.name, error: toTroupeError(err, 'TRANSPORT_CLOSED') });
      try {
        Promise.resolve(d.start(this, (node, addrs) => this.#discovered(node, addrs))).catch(report);
      } catch (err) {
        report(err);
      }
    }
  }

  /** A discovery heard of `node` (authenticated by the discovery; the handshake checks again). */
  #discovered(node: string, addrs: string[]): void {
    if (this.#shutdown || node === this.id || this.#direct.has(node)) return;
    if (addrs.length && (this.#addresses.size < MAX_ROUTES || this.#addresses.has(node))) this.#addresses.set(node, addrs);
    // Discovery dials even with autoConnect off: finding the cluster is what it is for.
    this.#dialKnown(node);
  }

  /** Membership gossip: this node and its direct peers, with listen addresses. */
  #membership(): string {
    const m: [string, string[]][] = [[this.id, this.#listenAddrs]];
    for (const peer of this.#direct.keys()) m.push([peer, this.#addresses.get(peer) ?? []]);
    return JSON.stringify({ t: 'mb', m });
  }

  /** Start every transport that can listen; resolves with the addresses peers can dial. */
  async listen(): Promise<string[]> {
    for (const t of this.#transports) {
      if (!t.listen) continue;
      const addrs = await t.listen((conn) => {
        this.attach(conn, false, { secret: t.secret }).catch(() => {
          /* reported as a protocolError / linkDown event */
        });
      });
      this.#listenAddrs.push(...addrs);
    }
    return [...this.#listenAddrs];
  }

  /** The addresses this node listens on. */
  get addresses(): string[] {
    return [...this.#listenAddrs];
  }

  /** Ids of the nodes this node can reach now (directly or routed). */
  nodes(): string[] {
    return [...this.#reachable];
  }

  /** Ids of the nodes this node has a direct link to. */
  peers(): string[] {
    return [...this.#direct.keys()];
  }

  /** Listen addresses a peer announced (for transitive connection). */
  addressesOf(node: string): string[] {
    return this.#addresses.get(node) ?? [];
  }

  /** Whether `node` is reachable now. */
  isReachable(node: string): boolean {
    return node === this.id || this.#routes.has(node);
  }

  /**
   * Link statistics per direct peer (for the cluster view). `queued`: characters of envelopes
   * waiting in the link; `backlog`: what the transport or the peer has not yet taken (see
   * `highWaterMark`); `holding`: the link is holding envelopes back (flow control).
   */
  linkStats(): { node: string; label: string; envelopesOut: number; framesOut: number; framesIn: number; queued: number; backlog: number; holding: boolean }[] {
    return [...this.#direct].map(([node, l]) => ({ node, label: l.conn.label, ...l.stats, queued: l.queued, backlog: l.backlog, holding: l.holding }));
  }

  /** Close the direct link to `node` (its monitors fire as for a lost node). */
  disconnect(node: string): void {
    this.#direct.get(node)?.close('disconnected');
  }

  /**
   * Report when `node` goes up or down (reachability). Fires `down` at once (asynchronously) if
   * it is not reachable now. Returns a function that stops reporting.
   */
  monitorNode(node: string, fn: (e: { node: string; up: boolean; reason?: string }) => void): () => void {
    let set = this.#nodeWatchers.get(node);
    if (!set) this.#nodeWatchers.set(node, (set = new Set()));
    set.add(fn);
    if (!this.isReachable(node)) queueMicrotask(() => set!.has(fn) && fn({ node, up: false, reason: 'noconnection' }));
    return () => set!.delete(fn);
  }

  #makeLinkOwner(): LinkOwner {
    const settings: LinkSettings = {
      secret: this.options.secret,
      heartbeatInterval: this.options.heartbeatInterval,
      heartbeatTimeout: this.options.heartbeatTimeout,
      handshakeTimeout: this.options.handshakeTimeout,
      maxFrameSize: this.options.maxFrameSize,
      highWaterMark: this.options.highWaterMark,
      maxLinkQueue: this.options.maxLinkQueue,
    };
    return {
      id: this.id,
      incarnation: this.incarnation,
      clock: this.clock,
      listenAddresses: () => this.#listenAddrs,
      linkSettings: () => settings,
      onLinkUp: (l) => {
        // Session counts are per life of the peer: a restarted peer starts from zero.
        this.#sessions.life(l.peer, l.peerIncarnation);
        // First envelope on every link, before anything #linkUp sends (see SessionHeader).
        l.enqueue(`{"t":"ss","l":${this.#sessions.mine(l.peer)},"v":${this.#sessions.theirs(l.peer)}}`);
        this.#linkUp(l);
      },
      onLinkFrame: (l, f) => this.#onFrame(l, f),
      onLinkDown: (l, r) => this.#linkDown(l, r),
      onLinkError: (l, error) => this.events.emit('protocolError', { error, peer: l.peer || undefined, label: l.conn.label }),
    };
  }

  #linkUp(link: Link): void {
    const peer = link.peer;
    const existing = this.#direct.get(peer);
    if (existing) {
      const dialer = (l: Link) => (l.initiator ? this.id : l.peer);
      // The peer restarted, or it dialed us again while we still hold the link it dialed before:
      // a node redials only after losing its link, and with it everything that crossed it
      // (monitors, links, calls). Mirror that loss here, or our side of those would be orphaned.
      const restarted = existing.peerIncarnation !== link.peerIncarnation;
      const redialed = !restarted && dialer(link) === peer && dialer(existing) === peer;
      if (restarted || redialed) {
        const reason = restarted ? 'peer restarted' : 'peer redialed';
        this.#direct.delete(peer);
        // linkUp/linkDown pair up per peer (they track node.peers()): the old link goes down first.
        this.events.emit('linkDown', { node: peer, label: existing.conn.label, reason });
        this.#lostVia(existing, 'noconnection');
        existing.close(reason);
        // A new life of the peer knows nothing of our past sessions with its old one.
        if (restarted) this.#sessions.reset(peer);
      } else {
        // Two links to one node (both dialed at once): keep the one dialed by the lower node id,
        // so both sides choose the same; both dialed by this node: keep the newer.
        const keepNew = dialer(link) === dialer(existing) || dialer(link) < dialer(existing);
        const drop = keepNew ? existing : link;
        if (!keepNew) {
          this.#pendingAttach.get(link)?.resolve(peer);
          this.#pendingAttach.delete(link);
          this.#retire(link);
          return;
        }
        this.#direct.set(peer, link);
        for (const [n, l] of this.#routes) if (l === drop) this.#routes.set(n, link);
        if (drop.state === 'up') this.#startSwitch(peer, drop);
        this.#retire(drop);
        this.#pendingAttach.get(link)?.resolve(peer);
        this.#pendingAttach.delete(link);
        return;
      }
    }
    this.#direct.set(peer, link);
    const previous = this.#routes.get(peer);
    this.#routes.set(peer, link);
    // The route shortened (a relayed path became a direct link): keep the pair's order.
    if (previous !== undefined && previous !== link) {
      if (previous.state === 'up') this.#startSwitch(peer, previous);
      // The old route is closing: what was on it may be lost (the session goes with it).
      else this.#routeBroken(peer, undefined);
    }
    if (link.peerAddresses.length) this.#addresses.set(peer, link.peerAddresses);
    this.#dialFailed.delete(peer);
    this.events.emit('linkUp', { node: peer, label: link.conn.label });
    this.#markUp(peer);
    for (const text of this.#registry.snapshot()) link.enqueue(text);
    const members = this.#membership();
    for (const l of this.#direct.values()) l.enqueue(members);
    this.#pendingAttach.get(link)?.resolve(peer);
    this.#pendingAttach.delete(link);
  }

  /** Timers closing retired duplicate links (cleared on shutdown). */
  #retiring = new Map<Link, unknown>();

  /**
   * Stop using a duplicate link, but keep reading it (and its heartbeats going) for a heartbeat
   * timeout before closing it: the peer makes the same choice only when its copy of the other
   * link comes up, a moment later, and keeps sending on this one until then. Closing it at once
   * lost what was in flight on it, silently (calls sent on it hung until their timeout).
   */
  #retire(link: Link): void {
    const timer = this.clock.setTimeout(() => {
      this.#retiring.delete(link);
      link.close('duplicate link');
    }, this.options.heartbeatTimeout);
    this.#retiring.set(link, timer);
  }

  #linkDown(link: Link, reason: string): void {
    this.#links.delete(link);
    // A route switch away from this link can no longer be flushed: what was on it is lost.
    if (this.#switching.size !== 0) for (const [n, sw] of [...this.#switching]) if (sw.old === link) this.#routeBroken(n, link);
    const pending = this.#pendingAttach.get(link);
    if (pending) {
      this.#pendingAttach.delete(link);
      // Link reports a failed handshake as `handshake failed: CODE: message`.
      const code = /^(?:handshake failed: )?([A-Z_]+):/.exec(reason)?.[1];
      pending.reject(toTroupeError(new TroupeError(code === 'UNAUTHORIZED' || code === 'VERSION_MISMATCH' || code === 'FRAME_TOO_LARGE' || code === 'PROTOCOL_ERROR' ? code : 'TRANSPORT_CLOSED', `link to ${link.conn.label} failed: ${reason}`)));
    }
    if (!link.peer || this.#direct.get(link.peer) !== link) {
      // never up, or a duplicate/replaced link: drop routes through it only
      for (const [n, l] of this.#routes) if (l === link) this.#routes.delete(n);
      return;
    }
    this.#direct.delete(link.peer);
    this.events.emit('linkDown', { node: link.peer, label: link.conn.label, reason });
    this.#lostVia(link, 'noconnection');
    const address = this.#linkAddress.get(link);
    const deliberate = /^(shutdown|disconnected|duplicate link|peer restarted|peer redialed|UNAUTHORIZED|VERSION_MISMATCH)/.test(reason);
    if (address && !deliberate && !this.#shutdown) {
      this.#redial(address, this.#seeds.has(address) ? Infinity : this.clock.now() + this.options.reconnectWindow);
    }
  }

  /** Drop every route through `link`; the nodes that leaves unreachable are lost. */
  #lostVia(link: Link, reason: string): void {
    const lost: string[] = [];
    for (const [n, l] of this.#routes) {
      if (l === link) {
        this.#routes.delete(n);
        lost.push(n);
      }
    }
    for (const n of lost) {
      this.#nodeLost(n, reason);
      const text = JSON.stringify({ t: 'nd', x: n });
      for (const l of this.#direct.values()) if (l !== link) l.enqueue(text);
    }
  }

  #markUp(node: string): void {
    if (this.#reachable.has(node)) return;
    this.#reachable.add(node);
    // We lost our session with it before: it may not know, and still hold its side.
    if (this.#sessions.mine(node) > 0) this.#sendSession(node);
    this.events.emit('nodeUp', { node });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: true });
  }

  /** `node` is unreachable: settle everything that depended on it. */
  #nodeLost(node: string, reason: string): void {
    this.#sessionLost(node, reason);
    const wasUp = this.#reachable.delete(node);
    this.#registry.dropNode(node);
    if (!wasUp) return;
    this.events.emit('nodeDown', { node, reason });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: false, reason });
  }

  /** This node lost its session with `node` (core/session.ts): settle all of it. */
  #sessionLost(node: string, reason: string): void {
    this.#sessions.lost(node);
    this.#settleSession(node, Infinity, reason);
  }

  /**
   * Settle the monitors, links and calls with `node` tagged with a session count of `node` below
   * `below` (Infinity: all): DOWN / exit `noconnection`, calls `NODE_DOWN`.
   */
  #settleSession(node: string, below: number, reason: string): void {
    this.#calls.dropNode(node, below, reason);
    for (const [mid, m] of this.#remoteMonitors) {
      if (m.target.node !== node || m.s >= below) continue;
      this.#remoteMonitors.delete(mid);
      if (m.watcher.monitors?.delete(mid) && m.watcher.alive) m.watcher.enqueueSystem(new Down(mid, m.target, 'noconnection'));
    }
    const tags = this.#sessions;
    for (const actor of [...this.#remoteBound]) {
      if (actor.watchers) for (const [mid, w] of actor.watchers) if (w.node === node && tags.tagOf(w) < below) actor.watchers.delete(mid);
      if (actor.links) {
        for (const [key, r] of actor.links) {
          if (r.node !== node || tags.tagOf(r) >= below) continue;
          actor.links.delete(key);
          if (actor.alive) this.#exitSignal(actor, r, 'noconnection', undefined, true);
        }
      }
    }
  }

  /**
   * The counts carried by an envelope from `peer` (`e`: its losses, `v`: its copy of ours):
   * settle what the peer has dropped, and say whether state the envelope creates may be kept.
   */
  #admit(peer: string, e: number | undefined, v: number | undefined): boolean {
    if (e !== undefined && this.#sessions.advance(peer, e)) this.#settleSession(peer, e, 'noconnection');
    const verdict = this.#sessions.admit(peer, e, v);
    if (verdict === 'receiver-stale') this.#sendSession(peer);
    return verdict === 'ok';
  }

  /** Tell `peer` our session counts (routed `sr`). */
  #sendSession(peer: string): void {
    if (!this.#route(peer)) return;
    this.#emit(peer, JSON.stringify({ t: 'sr', n: peer, o: this.id, h: 0, e: this.#sessions.mine(peer), v: this.#sessions.theirs(peer) }), undefined, { to: peer });
  }

  #route(node: string): Link | undefined {
    const link = this.#routes.get(node);
    if (link !== undefined || this.#direct.size !== 1) return link;
    // A leaf (a worker behind its tab, a page behind its relay) sends what it has no route for
    // up its only link: the node above knows more of the cluster.
    return this.#direct.values().next().value;
  }

  #bindRef(node: string, id: number, addrs: string[] | undefined): ActorRef<any, any> {
    // A ref to a node we have no route to arrived on some link: route through that link until
    // something better is known (transitive routing; see DESIGN.md).
    const via = this.#decodeLink;
    if (via && node !== this.id && !this.#routes.has(node) && this.#routes.size < MAX_ROUTES) this.#routes.set(node, via);
    if (addrs && node !== this.id && !this.#addresses.has(node) && this.#addresses.size < MAX_ROUTES) this.#addresses.set(node, addrs);
    return new ActorRef(this, node, id);
  }

  #q(s: string): string {
    let q = this.#quoted.get(s);
    if (q === undefined) {
      q = JSON.stringify(s);
      if (this.#quoted.size < MAX_ROUTES) this.#quoted.set(s, q);
    }
    return q;
  }

  /**
   * Route one envelope; reports a failure as a dead letter and returns why (undefined when it
   * left). `droppable` (sends, spawn requests): refused while the link is congested.
   */
  #emit(node: string, header: string, payload: string | undefined, what: { to: string; message?: unknown; droppable?: boolean }): 'unreachable' | 'frame-too-large' | 'overflow' | undefined {
    const link = this.#route(node);
    if (!link) {
      this.#deadLetter(what.to, 'unreachable', what.message);
      return 'unreachable';
    }
    if (link.peer !== node && this.options.autoConnect) this.#autoDial(node);
    const text = payload === undefined ? header : header + PAYLOAD_SEPARATOR + payload;
    if (text.length > this.options.maxFrameSize) {
      this.#deadLetter(what.to, 'frame-too-large', what.message, new TroupeError('FRAME_TOO_LARGE', `message of ${text.length} chars exceeds the frame limit`));
      return 'frame-too-large';
    }
    if (this.#switching.size !== 0 && this.#hold(node, text)) return undefined;
    if (!link.enqueue(text, what.droppable)) {
      if (this.events.has('deadLetter')) {
        // A flood of refused sends must stay cheap: one error (a stack capture) per link, reused.
        let error = this.#overflowErrors.get(link);
        if (!error) this.#overflowErrors.set(link, (error = this.#congested(link)));
        this.#deadLetter(what.to, 'overflow', what.message, error);
      }
      return 'overflow';
    }
    return undefined;
  }

  /** The error for an envelope a congested link refused (see `maxLinkQueue`). */
  #congested(link: Link): TroupeError {
    return new TroupeError('MAILBOX_FULL', `link to ${link.peer} is congested: its queue is full (maxLinkQueue ${this.options.maxLinkQueue} chars)`);
  }

  /** The error reported with `overflow` dead letters, one per link. */
  #overflowErrors = new WeakMap<Link, TroupeError>();

  #encode(value: unknown, to: string): string | undefined {
    try {
      return this.#codec.encode(value);
    } catch (err) {
      this.#deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Incoming frames

  #onFrame(link: Link, frame: string): void {
    let start = 0;
    this.#decodeLink = link;
    try {
      for (;;) {
        const end = frame.indexOf(ENVELOPE_SEPARATOR, start);
        const text = end < 0 ? frame.slice(start) : frame.slice(start, end);
        if (text.length) this.#onEnvelope(link, text);
        if (end < 0) break;
        start = end + 1;
      }
    } finally {
      this.#decodeLink = undefined;
    }
  }

  #protocolError(link: Link, message: string, cause?: unknown): void {
    this.events.emit('protocolError', {
      error: new TroupeError('PROTOCOL_ERROR', message, { cause }),
      peer: link.peer,
      label: link.conn.label,
    });
  }

  #onEnvelope(link: Link, text: string): void {
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    const headText = tab < 0 ? text : text.slice(0, tab);
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    let raw: unknown;
    try {
      raw = parseHeader(headText);
    } catch (err) {
      return this.#protocolError(link, 'malformed envelope header', err);
    }
    let h = fastHeader(raw);
    if (h === undefined) {
      const parsed = EnvelopeHeader.safeParse(raw);
      if (!parsed.success) {
        const t = (raw as { t?: unknown } | null)?.t;
        return this.#protocolError(link, typeof t === 'string' ? `invalid or unknown envelope "${t.slice(0, 20)}"` : 'invalid envelope', parsed.error.issues);
      }
      h = parsed.data;
    }
    if ('n' in h) {
      if (h.n !== this.id) return this.#forward(link, h, payload);
      // This node never sends itself envelopes over a link: one that claims to come from here is
      // forged (a link request "from" one of our actors would make us signal it ourselves).
      if (h.o === this.id) return this.#protocolError(link, `envelope "${h.t}" claims to come from this node`);
      // Learn a route to the origin; bounded, since a peer may claim any origin it likes.
      if (!this.#routes.has(h.o) && this.#routes.size < MAX_ROUTES) this.#routes.set(h.o, link);
      if (!this.#reachable.has(h.o) && this.#routes.has(h.o)) this.#markUp(h.o);
    }
    switch (h.t) {
      case 's':
        return this.#inSend(h.a, h.o, payload);
      case 'c':
        return this.#inCall(h.a, h.o, h.c, payload);
      case 'r':
        return this.#inReply(h.c, h.k, payload);
      case 'x':
        return this.#inExit(h.a, h.o, h.f, h.l === 1, payload);
      case 'l':
        if (!this.#admit(h.o, h.e, h.v)) return;
        return this.#inLink(h.t, h.a, h.o, h.f);
      case 'u':
        return this.#inLink(h.t, h.a, h.o, h.f);
      case 'm':
        if (!this.#admit(h.o, h.e, h.v)) return;
        return this.#inMonitor(h.a, h.o, h.w, h.m);
      case 'dm':
        this.#actors.get(h.a)?.watchers?.delete(h.m);
        return;
      case 'd':
        return this.#inDown(h.w, h.m, h.o, h.a, payload);
      case 'sp':
        // A spawn of a stale session is dropped: its caller's call is (or will be) NODE_DOWN.
        if (!this.#admit(h.o, h.e, h.v)) return;
        return this.#inSpawn(h, payload);
      case 'rf': {
        // Everything the sender routed to us the old way has arrived: answer on the shortest way.
        const back = this.#direct.get(h.o) ?? this.#routes.get(h.o);
        back?.enqueue(JSON.stringify({ t: 'ra', n: h.o, o: this.id, h: 0, k: h.k }));
        return;
      }
      case 'ra':
        return this.#endSwitch(h.o, h.k);
      case 'hb':
        return;
      case 'ss': {
        // The peer has lost its session with us since it last told us: it dropped state that we
        // still hold (monitors, links, calls across a link only it saw die). Settle it.
        const peer = link.peer;
        const current = this.#direct.get(peer);
        if (h.l > this.#sessions.theirs(peer) && current !== undefined && current !== link) {
          // The link we were using is dead on the peer's side; this one is its only link to us.
          const timer = this.#retiring.get(link);
          if (timer !== undefined) {
            this.clock.clearTimeout(timer);
            this.#retiring.delete(link);
          }
          this.#direct.set(peer, link);
          for (const [n, l] of this.#routes) if (l === current) this.#routes.set(n, link);
          current.close('peer lost this link');
        }
        // A lower `v` needs no answer: our own `ss` on this link tells the peer.
        if (this.#sessions.advance(peer, h.l)) this.#settleSession(peer, h.l, 'noconnection');
        return;
      }
      case 'sr':
        this.#admit(h.o, h.e, h.v);
        return;
      case 'nd':
        // #route, not #routes: a leaf sends to nodes it has no route for up its only link.
        if (this.#route(h.x) === link && !this.#direct.has(h.x)) {
          this.#routes.delete(h.x);
          this.#nodeLost(h.x, 'noconnection');
          const t = JSON.stringify({ t: 'nd', x: h.x });
          for (const l of this.#direct.values()) if (l !== link) l.enqueue(t);
        } else if (this.#switching.get(h.x)?.old === link) {
          // The route we are switching away from lost the node before it was flushed.
          this.#routeBroken(h.x, link);
        }
        return;
      case 'sl':
        if (h.x !== this.id && (this.#route(h.x) === link || this.#switching.get(h.x)?.old === link)) this.#routeBroken(h.x, link);
        return;
      case 'ga':
      case 'gd':
        if (h.x === this.id) return this.#ownNameClaim(h.t, h.g, h.a, link);
        if (h.t === 'ga' && this.#registry.size >= MAX_NAMES && !this.#registry.get(h.g)) {
          return this.#protocolError(link, `registry full (${MAX_NAMES} names): "${h.g.slice(0, 40)}" not added`);
        }
        return this.#registry.apply(h.t, h.g, h.x, h.a, link);
      case 'mb':
        for (const [node, addrs] of h.m) {
          if (node === this.id) continue;
          // The sender's direct peers are reachable through it until a shorter route is known.
          if (!this.#routes.has(node) && this.#routes.size < MAX_ROUTES) {
            this.#routes.set(node, link);
            this.#markUp(node);
          }
          if (!addrs.length) continue;
          if (this.#addresses.size < MAX_ROUTES || this.#addresses.has(node)) this.#addresses.set(node, addrs);
          this.#autoDial(node);
        }
        return;
    }
  }

  /**
   * A peer's registry add or delete about one of this node's own actors. This node alone decides
   * its actors' names: such a claim is stale (flooding raced an unregister) or forged, so it is
   * not applied; the peer is corrected with what this node holds.
   */
  #ownNameClaim(op: 'ga' | 'gd', name: string, id: number, link: Link): void {
    const cur = this.#registry.get(name);
    const ours = cur !== undefined && cur.node === this.id && cur.id === id;
    if (op === 'ga' && !ours) link.enqueue(JSON.stringify({ t: 'gd', g: name, x: this.id, a: id }));
    if (op === 'gd' && ours) link.enqueue(JSON.stringify({ t: 'ga', g: name, x: this.id, a: id }));
  }

  /** Route changes in progress: envelopes for the node wait until the old route is flushed. */
  #switching = new Map<string, { held: string[]; timer: unknown; marker: number; old: Link }>();
  #nextMarker = 1;

  #startSwitch(node: string, oldLink: Link): void {
    if (this.#switching.has(node)) return;
    const marker = this.#nextMarker++;
    // If the answer never comes, the old route died with what was on it: see #routeBroken.
    const timer = this.clock.setTimeout(() => {
      if (this.#switching.get(node)?.marker === marker) this.#routeBroken(node, undefined);
    }, this.options.heartbeatTimeout);
    this.#switching.set(node, { held: [], timer, marker, old: oldLink });
    oldLink.enqueue(JSON.stringify({ t: 'rf', n: node, o: this.id, h: 0, k: marker }));
  }

  /**
   * Envelopes to `node` may have been lost on their way, though `node` is still reachable: the
   * old route of a switch died before it was flushed, or a node we route through said so (`sl`,
   * from `from`). Our session with `node` is lost (settled here, told to `node` with `sr`), and
   * so is that of every node routing to `node` through us, since we may have forwarded its
   * envelopes the old way: they are told with `sl`. Flush markers of others that we hold are not
   * released, so their switches fail too rather than confirm a route that lost envelopes.
   */
  #routeBroken(node: string, from: Link | undefined): void {
    const sw = this.#switching.get(node);
    if (sw !== undefined) {
      this.#switching.delete(node);
      this.clock.clearTimeout(sw.timer);
    }
    this.#sessionLost(node, 'route lost');
    const text = JSON.stringify({ t: 'sl', x: node });
    for (const l of this.#direct.values()) if (l !== from && l.peer !== node) l.enqueue(text);
    this.#sendSession(node);
    if (sw === undefined) return;
    const link = this.#route(node);
    for (const held of sw.held) {
      if (held.startsWith('{"t":"rf"')) continue;
      if (link === undefined || !link.enqueue(held)) this.#deadLetter(node, link ? 'overflow' : 'unreachable');
    }
  }

  /** Hold `text` for `node` if its route is switching; false if it may go now. */
  #hold(node: string, text: string): boolean {
    const sw = this.#switching.get(node);
    if (sw === undefined) return false;
    sw.held.push(text);
    return true;
  }

  #endSwitch(node: string, marker: number): void {
    const sw = this.#switching.get(node);
    if (sw === undefined || sw.marker !== marker) return;
    this.#switching.delete(node);
    this.clock.clearTimeout(sw.timer);
    const link = this.#route(node);
    for (const text of sw.held) {
      if (link === undefined || !link.enqueue(text)) this.#deadLetter(node, link ? 'overflow' : 'unreachable');
    }
  }

  #forward(from: Link, h: RoutedHeader, payload: string | undefined): void {
    if (h.h + 1 > this.options.hopLimit) {
      this.events.emit('protocolError', { error: new TroupeError('HOP_LIMIT', `envelope for ${h.n} exceeded ${this.options.hopLimit} hops`), peer: from.peer });
      if (h.t === 'c' || h.t === 'sp') this.#replyError(h.o, h.c, new TroupeError('HOP_LIMIT', `no route to ${h.n} within ${this.options.hopLimit} hops`));
      return;
    }
    if (h.o !== this.id && !this.#routes.has(h.o) && this.#routes.size < MAX_ROUTES) this.#routes.set(h.o, from);
    const link = this.#route(h.n);
    if (!link || link === from) {
      if (h.t === 'c' || h.t === 'sp') this.#replyError(h.o, h.c, new TroupeError('NODE_DOWN', `node ${h.n} is not reachable from ${this.id}`));
      else if (h.t === 'm') this.#sendDown(h.o, h.w, h.m, h.n, h.a, 'noconnection', undefined);
      else this.#deadLetter(`${h.n}/${'a' in h ? h.a : '?'}`, 'unreachable');
      return;
    }
    // Relays forward the payload bytes untouched: only the small header is rewritten. A relay
    // in front of a slow peer bounds what it holds: sends, calls and spawns past maxLinkQueue
    // are dropped (calls and spawns get a MAILBOX_FULL reply).
    const droppable = h.t === 's' || h.t === 'c' || h.t === 'sp';
    const text = envelope({ ...h, h: h.h + 1 }, payload);
    if (this.#switching.size !== 0 && this.#hold(h.n, text)) return;
    if (!link.enqueue(text, droppable)) {
      const error = this.#congested(link);
      if (h.t === 'c' || h.t === 'sp') this.#replyError(h.o, h.c, error);
      else this.#deadLetter(`${h.n}/${'a' in h ? h.a : '?'}`, 'overflow', undefined, error);
    }
  }

  #decodePayload(payload: string | undefined, to: string): { ok: true; value: unknown } | { ok: false; error: TroupeError } {
    if (payload === undefined) return { ok: true, value: undefined };
    try {
      return { ok: true, value: this.#codec.decode(payload) };
    } catch (err) {
      const error = toTroupeError(err, 'INVALID_MESSAGE');
      this.events.emit('invalidMessage', { to, error });
      return { ok: false, error };
    }
  }

  #inSend(id: number, origin: string, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.#deadLetter(`${this.id}/${id}`, 'no-actor');
      return;
    }
    // The hot path: decode without a result object per message.
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.#codec.decode(payload);
    } catch (err) {
      this.events.emit('invalidMessage', { to: actor.ref.key, error: toTroupeError(err, 'INVALID_MESSAGE') });
      return;
    }
    this.#deliver(actor, msg, 0, origin);
  }

  #inCall(id: number, origin: string, callId: number, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.#replyError(origin, callId, new TroupeError('NO_ACTOR', `no actor ${this.id}/${id}`));
      return;
    }
    const d = this.#decodePayload(payload, actor.ref.key);
    if (!d.ok) {
      this.#replyError(origin, callId, d.error);
      return;
    }
    this.#deliver(actor, d.value, callId, origin);
  }

  #inReply(callId: number, ok: 0 | 1, payload: string | undefined): void {
    if (!this.#calls.has(callId)) {
      this.#deadLetter(`${this.id}#call${callId}`, 'late-reply');
      return;
    }
    let value: unknown;
    try {
      value = payload === undefined ? undefined : this.#codec.decode(payload);
    } catch (err) {
      this.#calls.settle(callId, false, toTroupeError(err, 'INVALID_MESSAGE'));
      return;
    }
    this.#calls.settle(callId, ok === 1, ok === 1 ? value : TroupeError.fromData(value));
  }

  #inExit(id: number, origin: string, fromId: number, viaLink: boolean, payload: string | undefined): void {
    const actor = this.#actors.get(id);
    if (!actor) return;
    const d = this.#decodePayload(payload, actor.ref.key);
    if (!d.ok) return;
    const [reason, result] = Array.isArray(d.value) ? d.value : [d.value, undefined];
    const from = fromId ? new ActorRef(this, origin, fromId) : undefined;
    if (viaLink && from && !actor.links?.has(from.key)) return; // unlinked meanwhile
    this.#exitSignal(actor, from, reason, result, viaLink);
  }

  #inLink(op: 'l' | 'u', id: number, origin: string, fromId: number): void {
    const partner = new ActorRef(this, origin, fromId);
    const actor = this.#actors.get(id);
    if (op === 'u') {
      actor?.links?.delete(partner.key);
      return;
    }
    if (!actor) {
      this.#sendExit(partner, this.id, id, 'noproc', undefined, true);
      return;
    }
    this.#sessions.tag(partner, origin);
    (actor.links ??= new Map()).set(partner.key, partner);
    this.#remoteBound.add(actor);
  }

  #inMonitor(id: number, origin: string, watcherId: number, mid: string): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.#sendDown(origin, watcherId, mid, this.id, id, 'noproc', undefined);
      return;
    }
    const watcher = new ActorRef(this, origin, watcherId);
    this.#sessions.tag(watcher, origin);
    (actor.watchers ??= new Map()).set(mid, watcher);
    this.#remoteBound.add(actor);
  }

  #inDown(watcherId: number, mid: string, origin: string, id: number, payload: string | undefined): void {
    const watcher = this.#actors.get(watcherId);
    this.#remoteMonitors.delete(mid);
    if (!watcher || !watcher.monitors?.delete(mid)) return;
    const d = this.#decodePayload(payload, watcher.ref.key);
    const [reason, result] = d.ok && Array.isArray(d.value) ? d.value : ['noproc', undefined];
    watcher.enqueueSystem(new Down(mid, new ActorRef(this, origin, id), reason, result));
  }

  #inSpawn(h: Extract<EnvelopeHeader, { t: 'sp' }>, payload: string | undefined): void {
    const d = this.#decodePayload(payload, `${this.id}:spawn:${h.b}`);
    if (!d.ok) return this.#replyError(h.o, h.c, d.error);
    const watcher = h.w ? new ActorRef(this, h.o, h.w) : undefined;
    let def: { impl: ProcessFn<any>; args: unknown };
    try {
      if (this.#shutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
      def = this.#behaviours.resolve(h.b, d.value);
    } catch (err) {
      return this.#replyError(h.o, h.c, toTroupeError(err));
    }
    // Reply before the actor runs: the caller sets up its side of the monitor/link when the
    // reply arrives, so a DOWN or EXIT from a failing init must follow the reply on the wire
    // (it then carries the real reason, not `noproc`). The ref is the id #spawnLocal takes next.
    const out = this.#encode(new ActorRef(this, this.id, this.#nextActor), h.o);
    if (out !== undefined) this.#emit(h.o, this.#replyHeader(h.o, h.c, 1), out, { to: h.o });
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
    if (!this.#route(nodeId)) return Promise.reject(new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`));
    let payload: string;
    try {
      payload = this.#codec.encode(args);
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    const mid = opts.monitor && from ? this.#newMonitorId() : '';
    const session = this.#sessions.theirs(nodeId);
    return this.#pending(nodeId, opts.timeout, (callId) => {
      const head = JSON.stringify({ t: 'sp', n: nodeId, o: this.id, h: 0, c: callId, b: name, w: from?.id ?? 0, lk: opts.link && from ? 1 : 0, m: mid, e: this.#sessions.mine(nodeId), v: session });
      const failed = this.#emit(nodeId, head, payload, { to: `${nodeId}:spawn:${name}`, droppable: true });
      if (failed === 'unreachable') return new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`);
      if (failed === 'frame-too-large') return new TroupeError('FRAME_TOO_LARGE', `arguments of the spawn of "${name}" exceed the frame limit`);
      if (failed === 'overflow') return this.#congested(this.#route(nodeId)!);
      return undefined;
    }, (value) => {
      // Runs synchronously on the reply, before any DOWN/EXIT that follows it on the wire.
      if (!(value instanceof ActorRef) || !from || !from.alive) return;
      if (opts.link) {
        const partner = new ActorRef(this, value.node, value.id);
        (from.links ??= new Map()).set(value.key, partner);
        this.#remoteBound.add(from);
        this.#sessions.tagWith(partner, session);
      }
      if (mid) {
        (from.monitors ??= new Map()).set(mid, value);
        this.#remoteMonitors.set(mid, { watcher: from, target: value, s: session });
      }
      // The peer lost the session after it spawned: settle what was just set up (noconnection).
      if (this.#sessions.theirs(nodeId) > session) this.#settleSession(nodeId, session + 1, 'noconnection');
    }) as Promise<ActorRef<any, any>>;
  }

  // ---------------------------------------------------------------------------------------
  // Delivery, calls, replies

  /** @internal RefHost */
  sendTo(ref: ActorRef<any, any>, msg: unknown): void {
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor === undefined) {
        this.#deadLetter(ref.key, 'no-actor', msg);
        return;
      }
      this.#deliver(actor, msg, 0, this.id);
      return;
    }
    const payload = this.#encode(msg, ref.key);
    if (payload === undefined) return;
    const header = `{"t":"s","n":${this.#q(ref.node)},"o":${this.#q(this.id)},"h":0,"a":${ref.id}}`;
    this.#emit(ref.node, header, payload, { to: ref.key, message: msg, droppable: true });
  }

  /** @internal RefHost */
  callTo(ref: ActorRef<any, any>, msg: unknown, options?: CallOptions): Promise<unknown> {
    return this._call(ref, msg, options, undefined);
  }

  /** @internal RefHost */
  exitTo(ref: ActorRef<any, any>, reason: unknown, sender?: Actor): void {
    const from = (sender ?? this.#scheduler.running)?.ref;
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (actor) this.#exitSignal(actor, from, reason, undefined, false);
      return;
    }
    this.#sendExit(ref, this.id, from?.id ?? 0, reason, undefined, false);
  }

  /** @internal */
  _call(ref: ActorRef<any, any>, msg: unknown, options: CallOptions | undefined, from: Actor | undefined): Promise<unknown> {
    const caller = from ?? this.#scheduler.running;
    if (caller && ref.node === this.id && ref.id === caller.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    if (ref.node === this.id) {
      const actor = this.#actors.get(ref.id);
      if (!actor) return Promise.reject(new TroupeError('NO_ACTOR', `no actor ${ref.key}`));
      return this.#pending(this.id, options?.timeout, (callId) => {
        this.#deliver(actor, msg, callId, this.id);
        return undefined;
      });
    }
    if (!this.#route(ref.node)) return Promise.reject(new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`));
    let payload: string;
    try {
      payload = this.#codec.encode(msg);
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    return this.#pending(ref.node, options?.timeout, (callId) => {
      const header = `{"t":"c","n":${this.#q(ref.node)},"o":${this.#q(this.id)},"h":0,"a":${ref.id},"c":${callId}}`;
      const text = header + PAYLOAD_SEPARATOR + payload;
      if (text.length > this.options.maxFrameSize) return new TroupeError('FRAME_TOO_LARGE', `message of ${text.length} chars exceeds the frame limit`);
      if (this.#switching.size !== 0 && this.#hold(ref.node, text)) return undefined;
      const link = this.#route(ref.node)!;
      return link.enqueue(text, true) ? undefined : this.#congested(link);
    });
  }

  /** Register a pending call, then run `start(callId)`; a returned error rejects at once. */
  #pending(target: string, timeout: number | undefined, start: (callId: number) => TroupeError | undefined, onReply?: (v: unknown) => void): Promise<unknown> {
    if (this.#calls.size >= this.options.maxPendingCalls) {
      return Promise.reject(new TroupeError('MAILBOX_FULL', `node ${this.id} has ${this.#calls.size} calls pending (maxPendingCalls)`));
    }
    const s = target === this.id ? 0 : this.#sessions.theirs(target);
    return this.#calls.open(target, s, timeout ?? this.options.callTimeout, start, onReply);
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
      this.#deadLetter(actor.ref.key, 'mailbox-full', msg, error);
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

  /** @internal answer a call */
  _reply(call: CallEnvelope, ok: boolean, value: unknown): void {
    call.done = true;
    this.#replyTo(call.replyNode, call.callId, ok, value);
  }

  #replyTo(node: string, callId: number, ok: boolean, value: unknown): void {
    if (node === this.id) {
      this.#calls.settle(callId, ok, value);
      return;
    }
    if (!ok) {
      this.#replyError(node, callId, value as TroupeError);
      return;
    }
    let payload: string;
    try {
      payload = this.#codec.encode(value);
    } catch (err) {
      this.#replyError(node, callId, toTroupeError(err, 'SERIALIZATION'));
      return;
    }
    this.#emit(node, this.#replyHeader(node, callId, 1), payload, { to: node });
  }

  #replyHeader(node: string, callId: number, ok: 0 | 1): string {
    return `{"t":"r","n":${this.#q(node)},"o":${this.#q(this.id)},"h":0,"c":${callId},"k":${ok}}`;
  }

  #replyError(node: string, callId: number, error: TroupeError): void {
    if (node === this.id) {
      this.#calls.settle(callId, false, error);
      return;
    }
    const payload = this.#codec.encode(error.toData(this.options.exposeStacks) as unknown as ErrorData);
    this.#emit(node, this.#replyHeader(node, callId, 0), payload, { to: node });
  }

  #deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void {
    if (this.events.has('deadLetter')) this.events.emit('deadLetter', { to, reason, message, error });
  }

  /** @internal a behaviour without `info` got a system message */
  _dropSystem(actor: Actor, msg: SystemMessage): void {
    this.#deadLetter(actor.ref.key, 'system-message', msg);
  }

  // ---------------------------------------------------------------------------------------
  // Scheduling

  /** @internal put a behaviour actor on the run queue */
  _schedule(actor: Actor): void {
    this.#scheduler.schedule(actor);
  }

  // ---------------------------------------------------------------------------------------
  // Links, monitors, exits

  /** @internal */
  _link(actor: Actor, ref: ActorRef<any, any>): void {
    if (ref.node === this.id) {
      if (ref.id === actor.id) return;
      const partner = this.#actors.get(ref.id);
      if (!partner) {
        this.#exitSignal(actor, ref, 'noproc', undefined, false);
        return;
      }
      (actor.links ??= new Map()).set(ref.key, ref);
      (partner.links ??= new Map()).set(actor.ref.key, actor.ref);
      return;
    }
    if (!this.#route(ref.node)) {
      this.#exitSignal(actor, ref, 'noconnection', undefined, false);
      return;
    }
    // Our own copy of the ref: it carries this link's session tag.
    const partner = new ActorRef(this, ref.node, ref.id);
    this.#sessions.tag(partner, ref.node);
    (actor.links ??= new Map()).set(ref.key, partner);
    this.#remoteBound.add(actor);
    const e = this.#sessions.mine(ref.node);
    const v = this.#sessions.theirs(ref.node);
    this.#emit(ref.node, JSON.stringify({ t: 'l', n: ref.node, o: this.id, h: 0, a: ref.id, f: actor.id, e, v }), undefined, { to: ref.key });
  }

  /** @internal */
  _unlink(actor: Actor, ref: ActorRef<any, any>): void {
    if (!actor.links?.delete(ref.key)) return;
    if (ref.node === this.id) {
      this.#actors.get(ref.id)?.links?.delete(actor.ref.key);
      return;
    }
    this.#emit(ref.node, JSON.stringify({ t: 'u', n: ref.node, o: this.id, h: 0, a: ref.id, f: actor.id }), undefined, { to: ref.key });
  }

  #newMonitorId(): string {
    return `${this.id}#${this.#nextMonitor++}`;
  }

  /** @internal */
  _monitor(watcher: Actor, ref: ActorRef<any, any>): string {
    const mid = this.#newMonitorId();
    if (ref.node === this.id) {
      const target = this.#actors.get(ref.id);
      if (!target) {
        watcher.enqueueSystem(new Down(mid, ref, 'noproc'));
        return mid;
      }
      (watcher.monitors ??= new Map()).set(mid, ref);
      (target.watchers ??= new Map()).set(mid, watcher.ref);
      return mid;
    }
    if (!this.#route(ref.node)) {
      watcher.enqueueSystem(new Down(mid, ref, 'noconnection'));
      return mid;
    }
    (watcher.monitors ??= new Map()).set(mid, ref);
    const v = this.#sessions.theirs(ref.node);
    this.#remoteMonitors.set(mid, { watcher, target: ref, s: v });
    const e = this.#sessions.mine(ref.node);
    this.#emit(ref.node, JSON.stringify({ t: 'm', n: ref.node, o: this.id, h: 0, a: ref.id, w: watcher.id, m: mid, e, v }), undefined, { to: ref.key });
    return mid;
  }

  /** @internal */
  _demonitor(watcher: Actor, mid: string): void {
    const ref = watcher.monitors?.get(mid);
    if (!ref) return;
    watcher.monitors!.delete(mid);
    if (ref.node === this.id) {
      this.#actors.get(ref.id)?.watchers?.delete(mid);
      return;
    }
    this.#remoteMonitors.delete(mid);
    this.#emit(ref.node, JSON.stringify({ t: 'dm', n: ref.node, o: this.id, h: 0, a: ref.id, m: mid }), undefined, { to: ref.key });
  }

  #sendExit(to: ActorRef<any, any>, fromNode: string, fromId: number, reason: unknown, result: unknown, viaLink: boolean): void {
    if (to.node === this.id) {
      const actor = this.#actors.get(to.id);
      if (actor) this.#exitSignal(actor, fromId ? new ActorRef(this, fromNode, fromId) : undefined, reason, result, viaLink);
      return;
    }
    const payload = this.#encode(result === undefined ? [reason] : [reason, result], to.key);
    if (payload === undefined) return;
    this.#emit(to.node, JSON.stringify({ t: 'x', n: to.node, o: fromNode, h: 0, a: to.id, f: fromId, l: viaLink ? 1 : 0 }), payload, { to: to.key });
  }

  #sendDown(node: string, watcherId: number, mid: string, deadNode: string, deadId: number, reason: unknown, result: unknown): void {
    if (node === this.id) {
      const watcher = this.#actors.get(watcherId);
      if (watcher?.monitors?.delete(mid)) {
        this.#remoteMonitors.delete(mid);
        watcher.enqueueSystem(new Down(mid, new ActorRef(this, deadNode, deadId), reason, result));
      }
      return;
    }
    let payload = this.#encode([reason, result], node);
    if (payload === undefined) payload = this.#codec.encode([errorReason(new Error('exit reason could not be serialized'), false)]);
    // DOWN travels from the dead actor's node: its origin is that node.
    this.#emit(node, JSON.stringify({ t: 'd', n: node, o: deadNode, h: 0, w: watcherId, m: mid, a: deadId }), payload, { to: node });
  }

  /** Deliver an exit signal to a local actor (Erlang semantics). */
  #exitSignal(actor: Actor, from: ActorRef<any, any> | undefined, reason: unknown, result: unknown, viaLink: boolean): void {
    if (!actor.alive) return;
    if (viaLink && from) actor.links?.delete(from.key);
    if (reason === 'kill' && !viaLink) {
      this._exit(actor, 'killed');
      return;
    }
    if (actor.trapExit) {
      actor.enqueueSystem(new Exit(from, reason, result));
      return;
    }
    if (reason === 'normal') return;
    this._exit(actor, reason === 'kill' ? 'killed' : reason);
  }

  /** @internal end an actor: settle its calls, fire its links and monitors, drop its names */
  _exit(actor: Actor, reason: ExitReason, result?: unknown): void {
    if (!actor.alive) return;
    const calls = actor.teardown();
    this.#actors.delete(actor.id);
    this.#remoteBound.delete(actor);
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
    if (actor.links) {
      for (const partnerRef of actor.links.values()) {
        if (partnerRef.node === this.id) {
          const partner = this.#actors.get(partnerRef.id);
          if (partner) this.#exitSignal(partner, ref, reason, result, true);
        } else {
          this.#sendExit(partnerRef, this.id, actor.id, reason, result, true);
        }
      }
    }
    if (actor.watchers) {
      for (const [mid, w] of actor.watchers) this.#sendDown(w.node, w.id, mid, this.id, actor.id, reason, result);
    }
    if (actor.monitors) {
      for (const mid of [...actor.monitors.keys()]) this._demonitor(actor, mid);
    }
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
    for (const timer of this.#retiring.values()) this.clock.clearTimeout(timer);
    this.#retiring.clear();
    for (const actor of [...this.#actors.values()]) this._exit(actor, 'shutdown');
    // Settle calls before the links close: closing them would reject these with NODE_DOWN.
    this.#calls.rejectAll(() => new TroupeError('SHUTDOWN', `node ${this.id} shut down`));
    for (const sw of this.#switching.values()) this.clock.clearTimeout(sw.timer);
    this.#switching.clear();
    // Let the exit/DOWN envelopes leave before the links close.
    await new Promise<void>((r) => queueMicrotask(r));
    for (const link of [...this.#links]) link.close('shutdown');
    const stops = [...this.#discoveriesStarted].map(async (d) => {
      try {
        await d.stop();
      } catch (err) {
        this.events.emit('discoveryError', { discovery: d.name, error: toTroupeError(err, 'TRANSPORT_CLOSED') });
      }
    });
    await Promise.all([...this.#transports.map((t) => t.close().catch(() => {})), ...stops]);
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

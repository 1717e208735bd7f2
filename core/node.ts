import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import type { z } from 'zod';
import type { ActorRef, AnyActorRef, CallOptions, SendOptions } from './actor-ref.ts';
import type { Behaviour, ProcessFn, RemoteSpawnOptions, SpawnOptions } from './behaviour.ts';
import { type Clock, systemClock } from './clock.ts';
import { TroupeError } from './errors.ts';
import { Emitter } from './events.ts';
import type { ExitReason } from './exit-reason.ts';
import type { Down } from './messages.ts';
import {
  DEFAULTS,
  type NodeEvents,
  type NodeOptions,
  type ResolvedOptions,
} from './node-options.ts';
import { isValidNodeId, NODE_ID_RULE } from './protocol.ts';
import { Router } from './router.ts';
import { Runtime } from './runtime.ts';
import { waitDown, watch } from './runtime-watch.ts';
import { openStream, type StreamOptions, type StreamReader } from './stream.ts';
import type { Connection } from './transport.ts';

export type {
  Behaviour,
  ChildSpawnOptions,
  ProcessFn,
  RemoteSpawnOptions,
  SpawnOptions,
} from './behaviour.ts';
export { behaviour } from './behaviour.ts';
export type { DeadLetterReason, NodeEvents, NodeOptions } from './node-options.ts';

const NO_OPTIONS: SpawnOptions = Object.freeze({});

/**
 * A troupe node: one runtime instance with its actors, links to peer nodes, routes and its view
 * of the cluster registry. Create one with {@link createNode}.
 *
 * The node is a facade: the actor side (actor table, delivery, calls and replies, exits, dead
 * letters, encoding) is its internal runtime (core/runtime.ts), the link layer its router
 * (core/router.ts, with the connector for listening and dialing). See docs/ARCHITECTURE.md.
 */
export class Node {
  /** This node's id, unique in the cluster. */
  readonly id: string;
  /** Changes each time a node starts, so peers tell a restart from a reconnect. */
  readonly incarnation: string;
  /** Typed events: dead letters, invalid messages, links and nodes up/down, protocol errors. */
  readonly events: Emitter<NodeEvents>;
  /** The timer source (the host's timers unless `options.clock` was given). */
  readonly clock: Clock;
  /** The options with every default filled in. */
  readonly options: ResolvedOptions;

  readonly #rt: Runtime;
  readonly #router: Router;

  constructor(options: NodeOptions = {}) {
    if (options.name !== undefined && !isValidNodeId(options.name)) {
      const shown = JSON.stringify(String(options.name).slice(0, 200));
      throw new TroupeError('PROTOCOL_ERROR', `invalid node id ${shown}: ${NODE_ID_RULE}`);
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
    const d = options.discovery;
    let router: Router | undefined;
    this.#rt = new Runtime({
      id: this.id,
      incarnation: this.incarnation,
      clock: this.clock,
      options: o,
      events: this.events,
      node: this,
      registryBackend: options.registry,
      wire: (parts, host) => {
        router = new Router(host, {
          ...parts,
          transports: options.transports ?? [],
          discoveries: d === undefined ? [] : Array.isArray(d) ? [...d] : [d],
        });
        return router;
      },
    });
    this.#router = router!;
  }

  // ---------------------------------------------------------------------------------------
  // Actors

  /**
   * Spawn an actor on this node from a process function or a behaviour; or, with a node id and
   * a behaviour name, on another node (see {@link Node.define}). A behaviour's ref is typed by
   * what it accepts and by what its calls resolve with (see `behaviour`).
   * @throws {TroupeError} `NAME_TAKEN` when `options.name` is taken.
   * @example
   * const echo = node.spawn(async (self) => { for (;;) self.reply(await self.receive()) })
   */
  spawn<S extends z.ZodType>(
    fn: ProcessFn<z.output<S>>,
    options: SpawnOptions & { schema: S },
  ): ActorRef<z.input<S>>;
  spawn<M, BR = unknown, I = M, R = BR>(
    fn: Behaviour<M, any, any, I, BR>,
    options?: SpawnOptions,
  ): ActorRef<I, R>;
  spawn<M = unknown>(fn: ProcessFn<M>, options?: SpawnOptions): ActorRef<M>;
  spawn<M = unknown>(
    nodeId: string,
    behaviour: string,
    args?: unknown,
    options?: RemoteSpawnOptions,
  ): Promise<ActorRef<M>>;
  spawn(
    what: ProcessFn<any> | Behaviour<any, any, any> | string,
    a?: SpawnOptions | string,
    args?: unknown,
    remote?: RemoteSpawnOptions,
  ): AnyActorRef | Promise<AnyActorRef> {
    if (typeof what === 'string') {
      const watcher = remote?.link ?? remote?.monitor;
      const actor = watcher && watcher.node === this.id ? this.#rt.actor(watcher.id) : undefined;
      if (watcher && !actor) {
        return Promise.reject(
          new TroupeError('NO_ACTOR', 'link/monitor of a remote spawn must be a live local actor'),
        );
      }
      return this.#rt.spawnRemote(what, a as string, args, actor, {
        link: !!remote?.link,
        monitor: !!remote?.monitor,
        timeout: remote?.timeout,
      });
    }
    return this.#rt.spawnLocal(what, (a as SpawnOptions | undefined) ?? NO_OPTIONS);
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
    this.#rt.behaviourTable.define(name, argsSchema, impl);
  }

  /** The names in this node's behaviour table. */
  behaviours(): string[] {
    return this.#rt.behaviourTable.names();
  }

  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: AnyActorRef): boolean {
    return this.#rt.isAlive(ref);
  }

  /** Number of live actors on this node. */
  get actorCount(): number {
    return this.#rt.actors.size;
  }

  /**
   * A ref for `{ node, id }` bound to this node (for refs that arrived as plain data), typed by
   * the messages `M` it accepts and the replies `R` its calls resolve with.
   * @throws {TroupeError} `PROTOCOL_ERROR` when `node` is not a valid node id (docs/protocol.md).
   */
  ref<M = unknown, R = unknown>(node: string, id: number): ActorRef<M, R> {
    if (!isValidNodeId(node)) {
      throw new TroupeError('PROTOCOL_ERROR', `invalid node id in a ref: ${NODE_ID_RULE}`);
    }
    return this.#rt.ref(node, id) as ActorRef<M, R>;
  }

  /** Send to a ref or a registered name. Never throws for an unreachable target. */
  send(to: AnyActorRef | string, msg: unknown, options?: SendOptions): void {
    if (typeof to === 'string') {
      const ref = this.#rt.whereis(to);
      if (!ref) {
        this.#rt.deadLetter(to, 'no-name', msg);
        return;
      }
      this.#rt.sendTo(ref, msg, options);
      return;
    }
    this.#rt.sendTo(to, msg, options);
  }

  /**
   * Call a ref or a registered name.
   * @throws {TroupeError} `NO_ACTOR` for an unknown name, else as `ActorRef.call`.
   */
  call<R = unknown>(to: AnyActorRef | string, msg: unknown, options?: CallOptions): Promise<R> {
    const ref = typeof to === 'string' ? this.#rt.whereis(to) : to;
    if (!ref) {
      return Promise.reject(
        new TroupeError('NO_ACTOR', `no actor is registered as "${to as string}"`),
      );
    }
    return this.#rt.call(ref, msg, options, undefined) as Promise<R>;
  }

  /**
   * Open a stream from `to` (a ref or a registered name); see {@link ActorRef.stream}.
   * @example
   * for await (const chunk of node.stream<string>('lines', { file: 'a.txt' })) console.log(chunk)
   */
  stream<T = unknown>(
    to: AnyActorRef | string,
    msg: unknown,
    options?: StreamOptions,
  ): StreamReader<T> {
    const ref = typeof to === 'string' ? this.#rt.whereis(to) : to;
    return openStream(this, ref ?? to, msg, options) as StreamReader<T>;
  }

  /** Send an exit signal to `ref` from outside any actor (`reason`: an {@link ExitReason}). */
  exit(ref: AnyActorRef, reason: unknown): void {
    this.#rt.exitTo(ref, reason);
  }

  /** Kill `ref` (untrappable). */
  kill(ref: AnyActorRef): void {
    this.#rt.exitTo(ref, 'kill');
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
    return watch(this.#rt, ref, onDown, onCancel);
  }

  /**
   * Resolve with the DOWN message of `ref` (see {@link Node.watch}).
   * @throws {TroupeError} `SHUTDOWN` when this node shuts down first.
   */
  waitDown(ref: AnyActorRef): Promise<Down> {
    return waitDown(this.#rt, ref);
  }

  // ---------------------------------------------------------------------------------------
  // Registry

  /**
   * Register `ref` under `name`, cluster-wide. Returns false if this node already sees the name
   * taken. A concurrent claim on another node is resolved deterministically (see README); the
   * loser's actor receives a `NAME_LOST` message.
   */
  register(name: string, ref: AnyActorRef): boolean {
    return this.#rt.register(name, ref);
  }

  /** The ref registered under `name`, as this node sees the cluster. */
  whereis<M = unknown>(name: string): ActorRef<M> | undefined {
    return this.#rt.whereis(name) as ActorRef<M> | undefined;
  }

  /** Remove `name` (only a name owned by one of this node's actors). */
  unregister(name: string): boolean {
    return this.#rt.unregister(name);
  }

  /** Every registered name this node sees. */
  registered(): Map<string, AnyActorRef> {
    return this.#rt.registered();
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
  linkStats(): {
    node: string;
    label: string;
    envelopesOut: number;
    framesOut: number;
    framesIn: number;
    queued: number;
    backlog: number;
    holding: boolean;
  }[] {
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
  monitorNode(
    node: string,
    fn: (e: { node: string; up: boolean; reason?: string }) => void,
  ): () => void {
    return this.#router.monitorNode(node, fn);
  }

  // ---------------------------------------------------------------------------------------
  // Shutdown

  /**
   * Stop the node: every actor exits with reason `shutdown` (their links and monitors fire,
   * remote ones too), pending calls reject with `SHUTDOWN`, links and transports close.
   */
  shutdown(): Promise<void> {
    return this.#rt.shutdown();
  }

  /** Whether `shutdown()` was called. */
  get isShutdown(): boolean {
    return this.#rt.isShutdown;
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

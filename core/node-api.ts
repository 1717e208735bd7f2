import type { z } from 'zod';
import type { ActorRef, AnyActorRef, CallOptions, SendOptions } from './actor-ref.ts';
import type { Behaviour, ProcessFn, RemoteSpawnOptions, SpawnOptions } from './behaviour.ts';
import type { Clock } from './clock.ts';
import type { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import type { Down } from './messages.ts';
import type { NodeEvents, ResolvedOptions } from './node-options.ts';
import type { StreamOptions, StreamReader } from './stream-reader.ts';
import type { Connection } from './transport.ts';

/** One direct link's figures (see {@link Node.linkStats}). */
export interface LinkStat {
  node: string;
  label: string;
  envelopesOut: number;
  framesOut: number;
  framesIn: number;
  queued: number;
  backlog: number;
  holding: boolean;
}

/**
 * A troupe node: one runtime instance with its actors, links to peer nodes, routes and its view
 * of the cluster registry. Create one with `createNode`; an actor reaches its own as `self.node`.
 *
 * The node is a facade (core/node.ts implements it): the actor side (actor table, delivery,
 * calls and replies, exits, dead letters, encoding) is its internal runtime (core/runtime.ts),
 * the link layer its router (core/router.ts). See docs/ARCHITECTURE.md.
 */
export interface Node {
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
  /**
   * Add a named behaviour to this node's behaviour table, so other nodes can spawn it here with
   * `node.spawn(thisNodeId, name, args)`. `args` are validated with `argsSchema`.
   */
  define<A>(
    name: string,
    argsSchema: z.ZodType<A> | undefined,
    impl: Behaviour<any, any, A> | ProcessFn<any>,
  ): void;
  /** The names in this node's behaviour table. */
  behaviours(): string[];
  /** Whether the actor `ref` names is alive on this node (false for other nodes' actors). */
  isAlive(ref: AnyActorRef): boolean;
  /** Number of live actors on this node. */
  readonly actorCount: number;
  /**
   * A ref for `{ node, id }` bound to this node (for refs that arrived as plain data), typed by
   * the messages `M` it accepts and the replies `R` its calls resolve with.
   * @throws {TroupeError} `PROTOCOL_ERROR` when `node` is not a valid node id (docs/protocol.md).
   */
  ref<M = unknown, R = unknown>(node: string, id: number): ActorRef<M, R>;
  /** Send to a ref or a registered name. Never throws for an unreachable target. */
  send(to: AnyActorRef | string, msg: unknown, options?: SendOptions): void;
  /**
   * Call a ref or a registered name.
   * @throws {TroupeError} `NO_ACTOR` for an unknown name, else as `ActorRef.call`.
   */
  call<R = unknown>(to: AnyActorRef | string, msg: unknown, options?: CallOptions): Promise<R>;
  /**
   * Open a stream from `to` (a ref or a registered name); see {@link ActorRef.stream}.
   * @example
   * for await (const chunk of node.stream<string>('lines', { file: 'a.txt' })) console.log(chunk)
   */
  stream<T = unknown>(
    to: AnyActorRef | string,
    msg: unknown,
    options?: StreamOptions,
  ): StreamReader<T>;
  /** Send an exit signal to `ref` from outside any actor (`reason`: an `ExitReason`). */
  exit(ref: AnyActorRef, reason: unknown): void;
  /** Kill `ref` (untrappable). */
  kill(ref: AnyActorRef): void;
  /**
   * Call `onDown` once when `ref` ends (with `noproc` if it is not alive, `noconnection` if its
   * node is lost). Returns a function that cancels the watch.
   */
  watch(
    ref: AnyActorRef,
    onDown: (down: Down) => void,
    onCancel?: (err: TroupeError) => void,
  ): () => void;
  /**
   * Resolve with the DOWN message of `ref` (see {@link Node.watch}).
   * @throws {TroupeError} `SHUTDOWN` when this node shuts down first.
   */
  waitDown(ref: AnyActorRef): Promise<Down>;

  // Registry

  /**
   * Register `ref` under `name`, cluster-wide. Returns false if this node already sees the name
   * taken. A concurrent claim on another node is resolved deterministically (see README); the
   * loser's actor receives a `NAME_LOST` message.
   */
  register(name: string, ref: AnyActorRef): boolean;
  /** The ref registered under `name`, as this node sees the cluster. */
  whereis<M = unknown>(name: string): ActorRef<M> | undefined;
  /** Remove `name` (only a name owned by one of this node's actors). */
  unregister(name: string): boolean;
  /** Every registered name this node sees. */
  registered(): Map<string, AnyActorRef>;

  // Links between nodes

  /**
   * Attach an open connection (from any adapter) and run the handshake on it. Resolves with the
   * peer's node id once the link is up.
   * @throws {TroupeError} `UNAUTHORIZED`, `VERSION_MISMATCH`, `TRANSPORT_CLOSED`, … when it fails.
   */
  attach(conn: Connection, initiator: boolean, options?: { secret?: string }): Promise<string>;
  /**
   * Dial `address` with the first transport that understands it and run the handshake.
   * Resolves with the peer's node id.
   */
  connect(address: string): Promise<string>;
  /**
   * Keep a link to a seed address: dial it now and redial with backoff (100 ms doubling to 5 s)
   * whenever the link is lost, until shutdown. Resolves with the seed's node id when first up;
   * membership gossip then connects this node to the members the seed knows.
   */
  join(address: string): Promise<string>;
  /** Start every transport that can listen; resolves with the addresses peers can dial. */
  listen(): Promise<string[]>;
  /** The addresses this node listens on. */
  readonly addresses: string[];
  /** Ids of the nodes this node can reach now (directly or routed). */
  nodes(): string[];
  /** Ids of the nodes this node has a direct link to. */
  peers(): string[];
  /** Listen addresses a peer announced (for transitive connection). */
  addressesOf(node: string): string[];
  /** Whether `node` is reachable now. */
  isReachable(node: string): boolean;
  /**
   * Link statistics per direct peer (for the cluster view). `queued`: characters of envelopes
   * waiting in the link; `backlog`: what the transport or the peer has not yet taken (see
   * `highWaterMark`); `holding`: the link is holding envelopes back (flow control).
   */
  linkStats(): LinkStat[];
  /** Close the direct link to `node` (its monitors fire as for a lost node). */
  disconnect(node: string): void;
  /**
   * Report when `node` goes up or down (reachability). Fires `down` at once (asynchronously) if
   * it is not reachable now. Returns a function that stops reporting.
   */
  monitorNode(
    node: string,
    fn: (e: { node: string; up: boolean; reason?: string }) => void,
  ): () => void;

  // Shutdown

  /**
   * Stop the node: every actor exits with reason `shutdown` (their links and monitors fire,
   * remote ones too), pending calls reject with `SHUTDOWN`, links and transports close.
   */
  shutdown(): Promise<void>;
  /** Whether `shutdown()` was called. */
  readonly isShutdown: boolean;
}

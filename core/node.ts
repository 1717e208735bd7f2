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
  type NodeSettings,
  type ResolvedOptions,
} from './node-options.ts';
import { isValidNodeId, NODE_ID_RULE } from './protocol.ts';
import { Router } from './router.ts';
import { Runtime } from './runtime.ts';
import { waitDown, watch } from './runtime-watch.ts';
import { openStream } from './stream.ts';
import type { StreamOptions, StreamReader } from './stream-reader.ts';
import type { LinkStat, Node } from './node-api.ts';
import type { Connection, Transport } from './transport.ts';
import type { Discovery } from './discovery.ts';
import type { RegistryBackend } from './registry.ts';

export type {
  Behaviour,
  ChildSpawnOptions,
  ProcessFn,
  RemoteSpawnOptions,
  SpawnOptions,
} from './behaviour.ts';
export { behaviour } from './behaviour.ts';
export type { Node } from './node-api.ts';
export type { DeadLetterReason, NodeEvents, NodeSettings } from './node-options.ts';

/** Options of {@link createNode}: its limits and timings, and the parts it is built from. */
export interface NodeOptions extends NodeSettings {
  /**
   * The node id; unique in the cluster: 1 to 128 characters from `A-Z a-z 0-9 . _ - : @ + ~`
   * (docs/protocol.md, "Node ids"); `createNode` throws `PROTOCOL_ERROR` for another.
   * @default a random `node-xxxxxxxx`
   */
  name?: string;
  /** Transports for `connect(address)` and `listen()`. @default [] */
  transports?: Transport[];
  /** Timer source (inject a manual clock in tests). @default the host's timers */
  clock?: Clock;
  /**
   * Find other nodes without seeds (for example `multicast()` from `troupe/multicast`). The node
   * dials what a discovery reports through its transports (the handshake still proves the
   * secret), and stops every discovery on shutdown. @default []
   */
  discovery?: Discovery | Discovery[];
  /**
   * Keep the registry in a shared store instead of gossiping it between nodes (for example
   * `transport.registry()` of `troupe/nats`, on JetStream KV). The API does not change.
   * @default undefined (names gossiped on links)
   */
  registry?: RegistryBackend;
}

const NO_OPTIONS: SpawnOptions = Object.freeze({});

/**
 * The public {@link Node} (core/node-api.ts, where its members are documented): a facade over the
 * node's runtime (core/runtime.ts: actors, delivery, calls, exits) and router (core/router.ts:
 * links, routes, sessions). It has no internal members. See docs/ARCHITECTURE.md.
 */
class TroupeNode implements Node {
  readonly id: string;
  readonly incarnation: string;
  readonly events: Emitter<NodeEvents>;
  readonly clock: Clock;
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

  define<A>(
    name: string,
    argsSchema: z.ZodType<A> | undefined,
    impl: Behaviour<any, any, A> | ProcessFn<any>,
  ): void {
    this.#rt.behaviourTable.define(name, argsSchema, impl);
  }

  behaviours(): string[] {
    return this.#rt.behaviourTable.names();
  }

  isAlive(ref: AnyActorRef): boolean {
    return this.#rt.isAlive(ref);
  }

  get actorCount(): number {
    return this.#rt.actors.size;
  }

  ref<M = unknown, R = unknown>(node: string, id: number): ActorRef<M, R> {
    if (!isValidNodeId(node)) {
      throw new TroupeError('PROTOCOL_ERROR', `invalid node id in a ref: ${NODE_ID_RULE}`);
    }
    return this.#rt.ref(node, id) as ActorRef<M, R>;
  }

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

  call<R = unknown>(to: AnyActorRef | string, msg: unknown, options?: CallOptions): Promise<R> {
    const ref = typeof to === 'string' ? this.#rt.whereis(to) : to;
    if (!ref) {
      return Promise.reject(
        new TroupeError('NO_ACTOR', `no actor is registered as "${to as string}"`),
      );
    }
    return this.#rt.call(ref, msg, options, undefined) as Promise<R>;
  }

  stream<T = unknown>(
    to: AnyActorRef | string,
    msg: unknown,
    options?: StreamOptions,
  ): StreamReader<T> {
    const ref = typeof to === 'string' ? this.#rt.whereis(to) : to;
    return openStream(this, ref ?? to, msg, options) as StreamReader<T>;
  }

  exit(ref: AnyActorRef, reason: unknown): void {
    this.#rt.exitTo(ref, reason);
  }

  kill(ref: AnyActorRef): void {
    this.#rt.exitTo(ref, 'kill');
  }

  watch(
    ref: AnyActorRef,
    onDown: (down: Down) => void,
    onCancel?: (err: TroupeError) => void,
  ): () => void {
    return watch(this.#rt, ref, onDown, onCancel);
  }

  waitDown(ref: AnyActorRef): Promise<Down> {
    return waitDown(this.#rt, ref);
  }

  // ---------------------------------------------------------------------------------------
  // Registry

  register(name: string, ref: AnyActorRef): boolean {
    return this.#rt.register(name, ref);
  }

  whereis<M = unknown>(name: string): ActorRef<M> | undefined {
    return this.#rt.whereis(name) as ActorRef<M> | undefined;
  }

  unregister(name: string): boolean {
    return this.#rt.unregister(name);
  }

  registered(): Map<string, AnyActorRef> {
    return this.#rt.registered();
  }

  // ---------------------------------------------------------------------------------------
  // Links between nodes (see Router and Connector)

  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    return this.#router.attach(conn, initiator, options);
  }

  connect(address: string): Promise<string> {
    return this.#router.connector.connect(address);
  }

  join(address: string): Promise<string> {
    return this.#router.connector.join(address);
  }

  listen(): Promise<string[]> {
    return this.#router.connector.listen();
  }

  get addresses(): string[] {
    return [...this.#router.connector.listenAddrs];
  }

  nodes(): string[] {
    return this.#router.nodes();
  }

  peers(): string[] {
    return this.#router.peers();
  }

  addressesOf(node: string): string[] {
    return this.#router.addressesOf(node);
  }

  isReachable(node: string): boolean {
    return this.#router.isReachable(node);
  }

  linkStats(): LinkStat[] {
    return this.#router.linkStats();
  }

  disconnect(node: string): void {
    this.#router.disconnect(node);
  }

  monitorNode(
    node: string,
    fn: (e: { node: string; up: boolean; reason?: string }) => void,
  ): () => void {
    return this.#router.monitorNode(node, fn);
  }

  // ---------------------------------------------------------------------------------------
  // Shutdown

  shutdown(): Promise<void> {
    return this.#rt.shutdown();
  }

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
  return new TroupeNode(options);
}

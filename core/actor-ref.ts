import type { ExitReason } from './exit-reason.ts';
import type { StreamOptions, StreamReader } from './stream-reader.ts';
import type { TransferOptions } from './transfer.ts';

/** Options of {@link ActorRef.send}. */
export interface SendOptions extends TransferOptions {}

/** Options of {@link ActorRef.sendAwait}. */
export interface SendAwaitOptions extends TransferOptions {
  /** Stop waiting for credit: the send rejects with `ABORTED` and is not sent. @default undefined */
  signal?: AbortSignal;
}

/** Options of {@link ActorRef.call}. */
export interface CallOptions extends TransferOptions {
  /** Milliseconds before the call rejects with `TIMEOUT`. @default 5000 (the node's `callTimeout`) */
  timeout?: number;
  /**
   * Cancel the call: when it aborts, the call rejects with `ABORTED`, its pending state is freed,
   * and the callee is told — it drops the call if it has not taken it yet, its `ctx.signal`
   * aborts, and a reply it sends later is dropped. @default undefined
   */
  signal?: AbortSignal;
}

/** The chunk type of a stream from an actor whose calls answer `R` (an async iterable of chunks). */
export type ChunkOf<R> = R extends AsyncIterable<infer C> ? C : unknown;

/**
 * What a ref needs from the node it is bound to. Internal: implemented by `Node`.
 * @internal
 */
export interface RefHost {
  readonly id: string;
  sendTo(ref: AnyActorRef, msg: unknown, options?: SendOptions): void;
  sendAwaitTo(ref: AnyActorRef, msg: unknown, options?: SendAwaitOptions): Promise<void>;
  callTo(ref: AnyActorRef, msg: unknown, options?: CallOptions): Promise<unknown>;
  streamFrom(ref: AnyActorRef, msg: unknown, options?: StreamOptions): StreamReader<unknown>;
  exitTo(ref: AnyActorRef, reason: unknown): void;
}

declare const messageType: unique symbol;
declare const replyType: unique symbol;

/**
 * A serializable address of an actor, typed by the message type `M` it accepts and the reply
 * type `R` its calls resolve with. It is a value: `{ node, id }`. Put it in any message; the
 * receiving node rebinds it so it can be sent to and called from there. Compare with
 * {@link ActorRef.equals} or {@link ActorRef.key}.
 *
 * Variance: refs of unrelated message types do not mix (`ActorRef<number>` is not an
 * `ActorRef<string>`), but every ref is an {@link AnyActorRef}, so code that only keeps,
 * compares or forwards refs takes `AnyActorRef`. The reply type is covariant.
 */
export class ActorRef<M = unknown, R = unknown> {
  /** Id of the node the actor lives on. */
  readonly node: string;
  /** Id of the actor on its node. */
  readonly id: number;
  #host: RefHost;
  // Method syntax makes the message brand bivariant: ActorRef<M> widens to ActorRef<unknown>
  // (AnyActorRef) while refs of unrelated message types stay apart.
  declare readonly [messageType]?: { brand(m: M): void }['brand'];
  declare readonly [replyType]?: () => R;

  /** @internal refs are made by nodes (spawn, decode), not by user code. */
  constructor(host: RefHost, node: string, id: number) {
    this.#host = host;
    this.node = node;
    this.id = id;
  }

  #key: string | undefined;

  /** `node/id`: a stable string key, equal for equal refs on every node. */
  get key(): string {
    return (this.#key ??= `${this.node}/${this.id}`);
  }

  /** The node this ref sends through (where it was spawned or decoded). */
  get boundTo(): string {
    return this.#host.id;
  }

  /**
   * Send `msg` (fire and forget). Never throws for an unreachable or dead target: the loss is
   * reported as a `deadLetter` event on the node that notices it (Erlang semantics).
   * `options.transfer` moves buffers instead of copying them on a MessagePort link.
   */
  send(msg: M, options?: SendOptions): void {
    this.#host.sendTo(this, msg, options);
  }

  /**
   * Send `msg` under flow control: resolves once it has left (`await` it before the next one).
   * It waits while this node has a window (4 × `highWaterMark`, default 4 MiB) of awaited sends to
   * the target's node that its actors have not yet taken out of their mailboxes — credit the
   * receiver grants back end to end, across relays — so a plain loop of awaited sends never
   * drops, at any message size, and memory stays bounded on both sides. A message larger than
   * the window goes alone. Plain `send` keeps its fire-and-forget semantics.
   * @throws {TroupeError} `NODE_DOWN` (the node is, or becomes while waiting, unreachable),
   *   `NO_ACTOR` (a local target that does not exist), `FRAME_TOO_LARGE`, `SERIALIZATION`,
   *   `ABORTED`, `SHUTDOWN`. A remote target that does not exist is a dead letter there.
   * @example
   * for (const chunk of chunks) await sink.sendAwait(chunk)
   */
  sendAwait(msg: M, options?: SendAwaitOptions): Promise<void> {
    return this.#host.sendAwaitTo(this, msg, options);
  }

  /**
   * Send `msg` and wait for the reply.
   * @throws {TroupeError} `TIMEOUT`, `NO_ACTOR`, `ACTOR_EXITED`, `NODE_DOWN`, `CALLING_SELF`,
   *   `INVALID_MESSAGE` (with the zod issues in `details`), `ABORTED` (`options.signal` fired).
   */
  call(msg: M, options?: CallOptions): Promise<R> {
    return this.#host.callTo(this, msg, options) as Promise<R>;
  }

  /**
   * Call with `msg` and read the chunks the actor answers with as a stream: its handler replies
   * with an async iterable (an async generator, a `ReadableStream`, …). The producer sends only
   * while the consumer has granted it credit (`options.window` chunks), so a slow consumer
   * pauses it; leaving the loop early (`break`, `return()`, `options.signal`) stops it.
   * @throws {TroupeError} (from the iteration) `NODE_DOWN` when the producer's node is lost,
   *   `ACTOR_EXITED` when the producer dies, the producer's own error when its iterable throws,
   *   `ABORTED`, and what `call` throws for the opening call.
   * @example
   * for await (const line of logs.stream({ file: 'a.log' })) console.log(line)
   */
  stream<C = ChunkOf<R>>(msg: M, options?: StreamOptions): StreamReader<C> {
    return this.#host.streamFrom(this, msg, options) as StreamReader<C>;
  }

  /** Send an exit signal with `reason` (an {@link ExitReason}; 'kill' cannot be trapped). */
  exit(reason: unknown): void {
    this.#host.exitTo(this, reason);
  }

  /** Kill the actor (an untrappable exit; monitors see reason `killed`). */
  kill(): void {
    this.#host.exitTo(this, 'kill');
  }

  /** Value equality: same node, same actor id. */
  equals(other: unknown): boolean {
    return other instanceof ActorRef && other.node === this.node && other.id === this.id;
  }

  toJSON(): { node: string; id: number } {
    return { node: this.node, id: this.id };
  }

  toString(): string {
    return `ActorRef(${this.key})`;
  }
}

/**
 * A ref of any message and reply type: what code that keeps, compares or forwards refs without
 * sending typed messages takes. Every `ActorRef<M, R>` is assignable to it.
 */
export type AnyActorRef = ActorRef<unknown, unknown>;

/** The message type an {@link ActorRef} accepts. */
export type MessageOf<T> = T extends ActorRef<infer M, unknown> ? M : never;

/** The reply type an {@link ActorRef}'s calls resolve with. */
export type ReplyOf<T> = T extends ActorRef<unknown, infer R> ? R : never;

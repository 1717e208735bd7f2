/**
 * Streams: `ref.stream(msg)` reads, as an async iterable, the chunks an actor produces when it
 * answers a call with an async iterable. A protocol over ordinary actor messages plus monitors
 * (no envelope of its own), so it works on every route: TCP, relays, WebRTC, workers.
 *
 * 1. The consumer spawns a sink actor on its node and calls the target with `msg`.
 * 2. The target answers with an async iterable; its node spawns a producer actor that holds the
 *    iterator and answers the call with a handle naming the producer (core/stream-serve.ts).
 * 3. The sink monitors the producer and sends it `open` with its ref and `window` credits; the
 *    producer monitors the sink.
 * 4. The producer sends one `chunk` per credit (a string chunk as the string message
 *    `~c<i>:<chunk>`, see STRING_CHUNK) and waits when it has none; the consumer grants
 *    credits back as the user takes chunks (half a window at a time), so at most `window` chunks
 *    are ever in flight or waiting: a slow consumer pauses the producer, memory stays bounded.
 * 5. `end` or `error` ends it. The consumer stopping (`break`, `return()`, an abort) sends
 *    `cancel` and ends the sink (the producer's monitor fires too); the producer's actor ending
 *    or its node being lost reaches the consumer as a DOWN: `ACTOR_EXITED` or `NODE_DOWN`.
 */
import type { ActorRef } from './actor-ref.ts';
import type { ActorContext } from './actor-context.ts';
import { isDown } from './messages.ts';
import { aborted, onAbort } from './abort.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import type { Node } from './node-api.ts';
import type { StreamOptions, StreamReader } from './stream-reader.ts';
import {
  isStreamHandle,
  MAX_WINDOW,
  STREAM_KEY,
  STREAM_TAG,
  STRING_CHUNK,
  sizeOf,
  type StreamMessage,
} from './stream-serve.ts';

export { serveStream, isAsyncIterable, isStreamHandle, STREAM_KEY } from './stream-serve.ts';
export type { ServeStreamOptions, StreamHandle, StreamMessage } from './stream-serve.ts';
export type { StreamOptions, StreamReader } from './stream-reader.ts';

/** Default credit window in chunks (see StreamOptions.window). */
const DEFAULT_WINDOW = 256;
/** Default byte window (see StreamOptions.windowBytes). */
const DEFAULT_WINDOW_BYTES = 2 * 1024 * 1024;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/** The reader behind `ref.stream` / `node.stream`: a sink actor fed by the producer's chunks. */
class ChunkReader<T> implements StreamReader<T> {
  readonly #node: Node;
  readonly #target: ActorRef<any, any> | string;
  readonly #msg: unknown;
  readonly #window: number;
  readonly #windowBytes: number;
  readonly #signal: AbortSignal | undefined;
  readonly #timeout: number | undefined;
  #self: ActorContext<unknown> | undefined;
  #endSink: (() => void) | undefined;
  #producer: ActorRef<StreamMessage, unknown> | undefined;
  #started: Promise<void> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #done = false;
  #next = 0;
  /** Chunks of a `chunks` message not yet handed to the user, from #batchAt on. */
  #batch: unknown[] | undefined;
  #batchAt = 0;
  /** Chunks handed to the user since the last credit grant, and their size (see sizeOf). */
  #taken = 0;
  #takenBytes = 0;
  #offAbort: () => void = () => {};
  /** Why the stream ended early when every later read must say so (an abort). */
  #failure: TroupeError | undefined;

  /** @internal made by `ref.stream` / `node.stream` */
  constructor(
    node: Node,
    target: ActorRef<any, any> | string,
    msg: unknown,
    options: StreamOptions = {},
  ) {
    this.#node = node;
    this.#target = target;
    this.#msg = msg;
    const w = options.window ?? DEFAULT_WINDOW;
    this.#window = Number.isSafeInteger(w) && w > 0 ? Math.min(w, MAX_WINDOW) : DEFAULT_WINDOW;
    const b = options.windowBytes ?? DEFAULT_WINDOW_BYTES;
    this.#windowBytes = Number.isSafeInteger(b) && b > 0 ? b : DEFAULT_WINDOW_BYTES;
    this.#signal = options.signal;
    this.#timeout = options.timeout;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next chunk. @throws {TroupeError} see `ActorRef.stream`. */
  next(): Promise<IteratorResult<T>> {
    const p = this.#chain.then(() => this.#read());
    this.#chain = p.catch(() => {});
    return p;
  }

  /** Stop early: the producer is told and stops (called by `break` in a `for await`). */
  return(): Promise<IteratorResult<T>> {
    this.#finish(true);
    return Promise.resolve(DONE);
  }

  /**
   * This stream as a web `ReadableStream` (pull-based: the producer still only runs as far as
   * the reader's credit); cancelling the ReadableStream stops the producer.
   */
  readable(): ReadableStream<T> {
    return new ReadableStream<T>(
      {
        pull: async (controller) => {
          const r = await this.next();
          if (r.done) controller.close();
          else controller.enqueue(r.value);
        },
        cancel: () => {
          this.#finish(true);
        },
      },
      { highWaterMark: 0 },
    );
  }

  async #read(): Promise<IteratorResult<T>> {
    if (this.#done) {
      if (this.#failure) throw this.#failure;
      return DONE;
    }
    this.#started ??= this.#start();
    await this.#started;
    if (this.#done) {
      if (this.#failure) throw this.#failure;
      return DONE;
    }
    const self = this.#self!;
    // Grant back what the user has taken, half a window at a time (fewer, larger grants).
    if (this.#taken * 2 >= this.#window || this.#takenBytes * 2 >= this.#windowBytes) {
      this.#producer!.send({ [STREAM_TAG]: 'credit', n: this.#taken });
      this.#taken = 0;
      this.#takenBytes = 0;
    }
    const batch = this.#batch;
    if (batch !== undefined) {
      const value = batch[this.#batchAt++];
      if (this.#batchAt === batch.length) this.#batch = undefined;
      this.#taken++;
      this.#takenBytes += sizeOf(value, this.#windowBytes);
      return { done: false, value: value as T };
    }
    for (;;) {
      let m: unknown;
      try {
        m = await self.receive(anyMessage, { signal: this.#signal });
      } catch (err) {
        // Stopped by the user (`return()` while this read waited): the sink ended under it.
        if (this.#done && this.#failure === undefined) return DONE;
        this.#finish(true);
        throw this.#failure ?? toTroupeError(err, 'ABORTED');
      }
      if (typeof m === 'string') {
        if (!m.startsWith(STRING_CHUNK)) continue;
        const colon = m.indexOf(':', STRING_CHUNK.length);
        const i = colon > STRING_CHUNK.length ? Number(m.slice(STRING_CHUNK.length, colon)) : -1;
        return this.#chunk(i, m.slice(colon + 1));
      }
      if (typeof m !== 'object' || m === null) continue;
      const kind = (m as Record<string, unknown>)[STREAM_TAG];
      if (kind === 'chunk') {
        const c = m as Extract<StreamMessage, { '~s': 'chunk' }>;
        return this.#chunk(c.i, c.v);
      }
      if (kind === 'chunks') {
        const c = m as Extract<StreamMessage, { '~s': 'chunks' }>;
        if (!Array.isArray(c.v) || c.v.length === 0) return this.#chunk(Number.NaN, undefined);
        const first = this.#chunk(c.i, c.v[0]);
        if (c.v.length > 1) {
          this.#next += c.v.length - 1;
          this.#batch = c.v;
          this.#batchAt = 1;
        }
        return first;
      }
      if (kind === 'end') {
        this.#finish(false);
        return DONE;
      }
      if (kind === 'error') {
        this.#finish(false);
        throw TroupeError.fromData((m as { e: unknown }).e);
      }
      if (isDown(m) && this.#producer?.equals(m.ref)) {
        this.#finish(false);
        if (m.reason === 'noconnection')
          throw new TroupeError(
            'NODE_DOWN',
            `node ${m.ref.node} of the stream's producer was lost`,
          );
        throw new TroupeError(
          'ACTOR_EXITED',
          `the stream's producer ${m.ref.key} ended (${describe(m.reason)}) before the stream did`,
          { details: { reason: m.reason } },
        );
      }
      // Anything else in the sink's mailbox is not ours: ignore it.
    }
  }

  /** Chunk `i` arrived with `value`: the next result, or a lost-chunk error. */
  #chunk(i: unknown, value: unknown): IteratorResult<T> {
    if (i !== this.#next) {
      this.#finish(true);
      throw new TroupeError(
        'PROTOCOL_ERROR',
        `stream lost chunks: got chunk ${String(i)}, expected ${this.#next}`,
      );
    }
    this.#next++;
    this.#taken++;
    this.#takenBytes += sizeOf(value, this.#windowBytes);
    return { done: false, value: value as T };
  }

  async #start(): Promise<void> {
    if (this.#signal?.aborted) throw aborted(this.#signal, 'stream');
    const node = this.#node;
    node.spawn(
      (self) =>
        new Promise<void>((resolve) => {
          this.#self = self;
          this.#endSink = resolve;
        }),
    );
    this.#offAbort = onAbort(this.#signal, () => {
      this.#failure ??= aborted(this.#signal!, 'stream');
      this.#finish(true);
    });
    let handle: unknown;
    try {
      handle = await node.call(this.#target, this.#msg, {
        timeout: this.#timeout,
        signal: this.#signal,
      });
    } catch (err) {
      this.#finish(false);
      throw err;
    }
    if (!isStreamHandle(handle)) {
      this.#finish(false);
      throw new TroupeError(
        'INVALID_MESSAGE',
        'the actor did not answer the call with a stream (reply with an async iterable)',
      );
    }
    if (this.#done) {
      // Stopped while the call was pending: the producer waits for `open` in vain and gives up.
      if (this.#failure) throw this.#failure;
      return;
    }
    const producer = handle[STREAM_KEY];
    this.#producer = producer;
    this.#self!.monitor(producer);
    producer.send({
      [STREAM_TAG]: 'open',
      sink: this.#self!.ref,
      credit: this.#window,
      bytes: this.#windowBytes,
    });
  }

  /** End the stream; `cancel`: tell the producer (the consumer stopped, not the producer). */
  #finish(cancel: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.#offAbort();
    if (cancel) this.#producer?.send({ [STREAM_TAG]: 'cancel' });
    this.#endSink?.();
  }
}

/** @internal `ref.stream` / `node.stream` */
export function openStream(
  node: Node,
  target: ActorRef<any, any> | string,
  msg: unknown,
  options?: StreamOptions,
): StreamReader<unknown> {
  return new ChunkReader(node, target, msg, options);
}

function describe(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (
    typeof reason === 'object' &&
    reason !== null &&
    typeof (reason as { message?: unknown }).message === 'string'
  )
    return (reason as { message: string }).message;
  return 'an error';
}

const anyMessage = (_m: unknown): boolean => true;

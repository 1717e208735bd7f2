/** Options of `ref.stream` and `node.stream`. */
export interface StreamOptions {
  /** Credit window: most chunks in flight or waiting to be read. @default 256 */
  window?: number;
  /**
   * Byte window: the producer stops while this much is in flight or waiting to be read (and
   * half of it is out), so small chunks get a deep window and large ones a bounded one. A chunk
   * counts as its string length or byteLength, 8 for a number, boolean or null, and a sixteenth
   * of the window for any other value. At most the window plus one chunk is ever out.
   * @default 2 MiB (2 * 1024 * 1024)
   */
  windowBytes?: number;
  /** Stop the stream when it aborts: the iteration rejects with `ABORTED` and the producer stops. @default undefined */
  signal?: AbortSignal;
  /** Timeout of the opening call in ms (the stream itself has none). @default the node's `callTimeout` */
  timeout?: number;
}

/**
 * The chunks of one stream, read once: `for await (const chunk of reader)`, or `next()` by
 * hand, or {@link StreamReader.readable} for a web `ReadableStream`. Nothing is sent until the
 * first read. Made by `ref.stream` and `node.stream` (core/stream.ts implements it).
 */
export interface StreamReader<T> extends AsyncIterableIterator<T> {
  /** The next chunk. @throws {TroupeError} see `ActorRef.stream`. */
  next(): Promise<IteratorResult<T>>;
  /** Stop early: the producer is told and stops (called by `break` in a `for await`). */
  return(): Promise<IteratorResult<T>>;
  /**
   * This stream as a web `ReadableStream` (pull-based: the producer still only runs as far as
   * the reader's credit); cancelling the ReadableStream stops the producer.
   */
  readable(): ReadableStream<T>;
}

/**
 * The producer side of streams (see core/stream.ts for the consumer and the protocol). A call
 * answered with an async iterable gets a stream handle instead: a producer actor on the callee's
 * node that holds the iterator and sends its chunks to the consumer while it has credit. Built
 * on the public runtime only (spawn, receive, monitor, send), so it works on every route.
 */
import { ActorRef } from './actor-ref.ts';
import { isDown } from './messages.ts';
import { toTroupeError } from './errors.ts';
import type { Node } from './node-api.ts';

/** Key of the stream handle a streaming call answers with: `{ "~troupe.stream": producer }`. */
export const STREAM_KEY = '~troupe.stream';
/** Key of every stream protocol message: `{ "~s": kind, … }`. */
export const STREAM_TAG = '~s';
/**
 * Prefix of a string chunk, which travels as a string message of its own: `~c<i>:` then the
 * chunk. A long string at the top of a message is read back without `JSON.parse` (the codec's
 * fast path, core/json-text.ts); wrapped in a `chunk` object it was parsed by the engine, the
 * largest cost of a string stream on the consumer's side (issue 14).
 */
export const STRING_CHUNK = '~c';
/** Largest credit window a consumer may ask for (chunks). */
export const MAX_WINDOW = 65_536;

/**
 * The stream protocol's messages, all ordinary actor messages (plain JSON plus refs):
 * consumer → producer: `open` (the sink to send to, the first credit in chunks and, optional,
 * `bytes`: the byte window, see {@link sizeOf}), `credit` (more chunks),
 * `cancel`; producer → consumer: `chunk` (`i`: its number from 0, `v`: the value), `end`,
 * `error` (`e`: the error's data). A chunk that is a string goes as the string message
 * `~c<i>:<chunk>` instead (see {@link STRING_CHUNK}); small chunks the producer has ready at
 * once go together as `chunks` (`i`: the number of the first, `v`: the values in order).
 */
export type StreamMessage =
  | { '~s': 'open'; sink: ActorRef<any, any>; credit: number; bytes?: number }
  | { '~s': 'credit'; n: number }
  | { '~s': 'cancel' }
  | { '~s': 'chunk'; i: number; v: unknown }
  | { '~s': 'chunks'; i: number; v: unknown[] }
  | { '~s': 'end' }
  | { '~s': 'error'; e: unknown };

/** What a streaming call answers with. */
export interface StreamHandle {
  readonly '~troupe.stream': ActorRef<StreamMessage, unknown>;
}

/** Options of {@link serveStream}. */
export interface ServeStreamOptions {
  /** The producer gives up (and returns the iterator) if no consumer opens it within this many ms. @default the node's `callTimeout` */
  openTimeout?: number;
}

/** Whether `v` can be served as a stream: it has `Symbol.asyncIterator`. */
export function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** Whether `v` is a stream handle (the answer of a streaming call). */
export function isStreamHandle(v: unknown): v is StreamHandle {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as Record<string, unknown>)[STREAM_KEY] instanceof ActorRef
  );
}

/** Whether `m` is a stream protocol message of kind `kind`. */
export function isStreamMessage<K extends StreamMessage['~s']>(
  m: unknown,
  kind: K,
): m is Extract<StreamMessage, { '~s': K }> {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[STREAM_TAG] === kind;
}

/**
 * Serve `iterable` as a stream from `node`: spawn its producer and return the handle to answer
 * the call with. A handler that replies with an async iterable gets this done for it; call it
 * yourself to pass options, or to hand a stream inside a larger answer.
 * @example
 * handle: (m, s, ctx) => { ctx.reply(serveStream(ctx.node, lines(m.file), { openTimeout: 1000 })) }
 */
export function serveStream(
  node: Node,
  iterable: AsyncIterable<unknown>,
  options: ServeStreamOptions = {},
): StreamHandle {
  const openTimeout = options.openTimeout ?? node.options.callTimeout;
  const producer = node.spawn(async (self) => {
    const it = iterable[Symbol.asyncIterator]();
    let open: Extract<StreamMessage, { '~s': 'open' }>;
    try {
      open = await self.receive(
        (m): m is typeof open => isStreamMessage(m, 'open') && validOpen(m),
        { timeout: openTimeout },
      );
    } catch {
      await closeIterator(it);
      return;
    }
    const sink = open.sink;
    const window = open.credit;
    // The consumer's end (it stopped, its node was lost) stops the producer too.
    self.monitor(sink);
    let credit = window;
    const room = new ByteRoom(open.bytes);
    let i = 0;
    let finished = false;
    // A read of the iterator already started (while gathering a batch) and not yet sent.
    let ahead: Promise<IteratorResult<unknown>> | undefined;
    /** Take one control message: false when the stream is over (cancel, the sink's DOWN). */
    const control = async (): Promise<boolean> => {
      const m = await self.receive();
      if (isDown(m) || isStreamMessage(m, 'cancel')) return false;
      if (isStreamMessage(m, 'credit') && Number.isSafeInteger(m.n) && m.n > 0) {
        credit = Math.min(window, credit + m.n);
        room.release(m.n);
      }
      return true;
    };
    try {
      for (;;) {
        // Take control messages as they come; wait for one only when out of credit.
        while (credit <= 0 || self.mailboxSize > 0) if (!(await control())) return;
        const r = await (ahead ?? it.next());
        ahead = undefined;
        if (r.done) {
          finished = true;
          sink.send({ [STREAM_TAG]: 'end' });
          return;
        }
        const v = r.value;
        const size = sizeOf(v, room.limit);
        // Out of bytes: wait until the consumer has taken enough (its grants free them).
        while (!room.fits(size)) if (!(await control())) return;
        room.add(size);
        if (credit === 1 || !isSmall(v)) {
          sink.send(chunkMessage(i++, v));
          credit--;
          continue;
        }
        // Small chunks the iterator has ready at once go together, one message for up to
        // MAX_BATCH of them (never more than the credit): per-message costs dominate small chunks.
        const batch: unknown[] = [v];
        let failure: { e: unknown } | undefined;
        while (batch.length < credit && batch.length < MAX_BATCH) {
          const p = it.next();
          const got = await settledSoon(p);
          if (got === PENDING) {
            ahead = p;
            break;
          }
          if ('e' in got) {
            failure = got;
            break;
          }
          const size = got.r.done ? 0 : sizeOf(got.r.value, room.limit);
          if (got.r.done || !isSmall(got.r.value) || !room.fits(size)) {
            ahead = p;
            break;
          }
          room.add(size);
          batch.push(got.r.value);
        }
        sink.send(
          batch.length === 1 ? chunkMessage(i, v) : { [STREAM_TAG]: 'chunks', i, v: batch },
        );
        i += batch.length;
        credit -= batch.length;
        if (failure) throw failure.e;
      }
    } catch (err) {
      finished = true;
      sink.send({ [STREAM_TAG]: 'error', e: toTroupeError(err, 'JOB_FAILED').toData() });
    } finally {
      if (!finished) await closeIterator(it);
    }
  });
  return { [STREAM_KEY]: producer } as StreamHandle;
}

/**
 * Size of a chunk for the byte window: a string's length, a binary value's byteLength, 8 for a
 * number, boolean or null, and a sixteenth of the window for anything else (its size is not
 * known without encoding it), so at most about 16 such chunks are in flight. Both sides use it:
 * the producer to stop, the consumer to grant. @internal
 */
export function sizeOf(v: unknown, windowBytes: number): number {
  if (typeof v === 'string') return v.length;
  if (typeof v !== 'object' || v === null) return 8;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength;
  return Number.isFinite(windowBytes) ? Math.ceil(windowBytes / 16) : 0;
}

/**
 * The producer's byte window: sizes of the chunks sent and not yet granted back, oldest first.
 * A chunk may go while less than half the window is out (so a chunk larger than what is left
 * never waits for grants that will not come) or when it fits.
 */
class ByteRoom {
  readonly limit: number;
  #sizes: number[] = [];
  #head = 0;
  #bytes = 0;

  constructor(limit: number | undefined) {
    this.limit = limit ?? Number.POSITIVE_INFINITY;
  }

  fits(size: number): boolean {
    return this.#bytes * 2 < this.limit || this.#bytes + size <= this.limit;
  }

  add(size: number): void {
    if (this.limit === Number.POSITIVE_INFINITY) return;
    this.#sizes.push(size);
    this.#bytes += size;
  }

  /** The consumer took the `n` oldest chunks. */
  release(n: number): void {
    const sizes = this.#sizes;
    let head = this.#head;
    for (; n > 0 && head < sizes.length; n--) this.#bytes -= sizes[head++];
    if (head === sizes.length) {
      this.#sizes = [];
      head = 0;
    } else if (head > 1024) {
      this.#sizes = sizes.slice(head);
      head = 0;
    }
    this.#head = head;
  }
}

/** Most chunks in one `chunks` message. */
const MAX_BATCH = 64;
/** Strings shorter than this, numbers, booleans and null are small enough to batch. */
const SMALL_STRING = 1024;
/** Microtask turns a read may take to count as ready at once (an async generator takes 2 or 3). */
const READY_TURNS = 8;

function isSmall(v: unknown): boolean {
  const t = typeof v;
  return (
    (t === 'string' && (v as string).length < SMALL_STRING) ||
    t === 'number' ||
    t === 'boolean' ||
    v === null
  );
}

const PENDING = Symbol('pending');
type Settled = { r: IteratorResult<unknown> } | { e: unknown };

/** What `p` settled to within a few microtask turns, or PENDING (it stays observed). */
async function settledSoon(p: Promise<IteratorResult<unknown>>): Promise<Settled | typeof PENDING> {
  let out: Settled | typeof PENDING = PENDING;
  p.then(
    (r) => {
      out = { r };
    },
    (e: unknown) => {
      out = { e };
    },
  );
  for (let t = 0; t < READY_TURNS && out === PENDING; t++) await undefined;
  return out;
}

/** The message of chunk `i`: a string as `~c<i>:<chunk>`, anything else as a `chunk` object. */
function chunkMessage(i: number, v: unknown): StreamMessage | string {
  return typeof v === 'string' ? `${STRING_CHUNK}${i}:${v}` : { [STREAM_TAG]: 'chunk', i, v };
}

function validOpen(m: { sink: unknown; credit: unknown; bytes?: unknown }): boolean {
  return (
    (m.bytes === undefined || (Number.isSafeInteger(m.bytes) && (m.bytes as number) > 0)) &&
    m.sink instanceof ActorRef &&
    Number.isSafeInteger(m.credit) &&
    (m.credit as number) > 0 &&
    (m.credit as number) <= MAX_WINDOW
  );
}

/** Let the iterable clean up (an async generator runs its `finally`); its errors are its own. */
async function closeIterator(it: AsyncIterator<unknown>): Promise<void> {
  try {
    await it.return?.();
  } catch {
    // nothing to report to: the consumer has gone
  }
}

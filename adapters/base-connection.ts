import type { AdmitPeer, Connection } from '../core/index.ts';

/** A settled promise whose `then` queues a flush (cheaper than `queueMicrotask` in Node). */
const RESOLVED: Promise<undefined> = Promise.resolve(undefined);
/** Frames held for a connection nobody has attached to yet; past this the peer is misbehaving. */
const MAX_EARLY_FRAMES = 10_000;

/**
 * What message-based adapters (MessagePort, WebSocket) share: `onclose` fires exactly once, and
 * nothing is lost in the gap between an adapter handing out a connection and core setting its
 * handlers (`node.attach` may run a few ticks later): frames that arrive in the gap are held and
 * delivered once `onframe` is set, a close in the gap is reported once `onclose` is set. Both are
 * delivered in a microtask, after whoever set the handler has finished setting up.
 */
export abstract class BaseConnection implements Connection {
  abstract readonly label: string;
  abstract send(frame: string): void;
  abstract close(): void;
  /** Set by core: called when `bufferedAmount` has fallen (see {@link Connection}). */
  ondrain: (() => void) | null = null;
  /** Set by the adapter that admitted the connection by a credential of its own (see {@link Connection.admit}). */
  admit?: (peer: AdmitPeer) => string | undefined;

  #onframe: ((frame: string) => void) | null = null;
  #onclose: ((reason?: string) => void) | null = null;
  #early: string[] = [];
  #unreported: string | undefined;
  #closed = false;

  /** Whether the connection has closed (locally or reported by the peer or host). */
  protected get closed(): boolean {
    return this.#closed;
  }

  get onframe(): ((frame: string) => void) | null {
    return this.#onframe;
  }

  set onframe(fn: ((frame: string) => void) | null) {
    this.#onframe = fn;
    if (!fn || this.#early.length === 0) return;
    queueMicrotask(() => {
      const early = this.#early;
      this.#early = [];
      for (const frame of early) {
        if (this.#closed || !this.#onframe) return;
        this.#onframe(frame);
      }
    });
  }

  get onclose(): ((reason?: string) => void) | null {
    return this.#onclose;
  }

  set onclose(fn: ((reason?: string) => void) | null) {
    this.#onclose = fn;
    const reason = this.#unreported;
    if (!fn || reason === undefined) return;
    this.#unreported = undefined;
    queueMicrotask(() => {
      if (this.#onclose !== fn) return;
      this.#onclose = null;
      fn(reason);
    });
  }

  /** Hand one received frame to core (or hold it). Returns false when too many are held. */
  protected deliver(frame: string): boolean {
    if (this.#closed) return true;
    if (this.#onframe && this.#early.length === 0) {
      this.#onframe(frame);
      return true;
    }
    this.#early.push(frame);
    return this.#early.length <= MAX_EARLY_FRAMES;
  }

  /**
   * Mark the connection closed, run the adapter's `cleanup`, and fire `onclose` (now, or once it
   * is set). Returns false (and does nothing) if it was already closed.
   */
  protected finish(reason: string, cleanup?: () => void): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#early = [];
    cleanup?.();
    const cb = this.#onclose;
    this.#onclose = null;
    if (cb) cb(reason);
    else this.#unreported = reason;
    return true;
  }
}

/**
 * What the adapters over a `postMessage` channel share (MessagePort / Worker, BroadcastChannel):
 * frames sent in one tick leave as one message (`{ troupe: 'frames', frames }`, or the bare string
 * when there is one: posting an array of n frames costs far less than n posts), held until the
 * other end has said it is there; the receiving side of the same format. Frames with moved
 * objects beside them leave as an array, `[frames, id, count, ...items, …]` (see
 * {@link queueMoved}). Every other object the adapter posts is a control message tagged `troupe`.
 */
export abstract class PostedConnection extends BaseConnection {
  #peerReady = false;
  #out: string[] = [];
  #outChars = 0;
  #flushScheduled = false;
  /**
   * The next array message while objects are being moved (see {@link queueMoved}): slot 0 is
   * kept for the frames, then `id, count, ...items` per transfer, flat (cheaper for the host to
   * clone than nested objects). Length 1: nothing to move.
   */
  #moved: unknown[] = [undefined];
  /** The host's transfer list of {@link #moved}. */
  #movedList: object[] = [];

  /**
   * Post one message on the channel (the adapter handles a failing post); `transfer`: the
   * host's transfer list, when the message moves objects.
   */
  protected abstract post(message: unknown, transfer?: object[]): void;
  /** A protocol error in what the peer posted: close, telling the peer why. */
  protected abstract fail(reason: string): void;

  get bufferedAmount(): number {
    return this.#outChars;
  }

  send(frame: string): void {
    if (this.closed) return;
    this.#out.push(frame);
    this.#outChars += frame.length;
    if (this.#peerReady && !this.#flushScheduled) {
      this.#flushScheduled = true;
      RESOLVED.then(this.flush);
    }
  }

  /**
   * Have the objects of transfer `id` (`items`; `transfer`: the host's transfer list for them)
   * leave with the next batch of frames, in the same message (`[frames, id, items.length,
   * ...items, …]`, `frames` a string or an array of them), so the envelope that holds their
   * placeholders and the objects arrive together: one post and one receive. Core has the link
   * write that envelope and then calls {@link postStaged} before the send returns, so the
   * objects leave at once, the sender's buffers detached by the host's own post; any flush
   * before that posts them too (never after their envelope). If no frame comes with them (the
   * link holds it, or refused the envelope), they leave alone and the peer keeps them until it
   * arrives.
   */
  protected queueMoved(id: number, items: unknown[], transfer: readonly object[]): void {
    if (this.closed) return;
    this.#moved.push(id, items.length);
    for (let i = 0; i < items.length; i++) this.#moved.push(items[i]);
    for (let i = 0; i < transfer.length; i++) this.#movedList.push(transfer[i]);
  }

  /** Post now what waits, with the objects staged (see {@link Connection.postStaged}). */
  postStaged(): void {
    if (this.#moved.length > 1) this.flush();
  }

  /**
   * The peer moved `items` to us under transfer `id` (they came in a batch of frames, before
   * those frames are handled). Adapters that take transfers override it.
   */
  protected acceptMoved(_id: unknown, _items: unknown): void {
    this.fail('PROTOCOL_ERROR: unexpected transfer');
  }

  /** Whether the other end has said it is on the channel. */
  protected get peerReady(): boolean {
    return this.#peerReady;
  }

  /** The other end is on the channel: what waited goes now. False if it was known already. */
  protected markPeerReady(): boolean {
    if (this.#peerReady) return false;
    this.#peerReady = true;
    this.flush();
    return true;
  }

  /**
   * Post what waits, as one message. `closing`: also before the peer said it is there (a port
   * holds messages for its listener), and without `ondrain` (nothing more may go out).
   */
  protected flush = (closing = false): void => {
    this.#flushScheduled = false;
    if (this.closed || !(this.#peerReady || closing)) return;
    const out = this.#out;
    if (this.#moved.length > 1) {
      const moved = this.#moved;
      const list = this.#movedList;
      moved[0] = out.length === 1 ? out[0] : out;
      this.#moved = [undefined];
      this.#movedList = [];
      this.#out = [];
      this.#outChars = 0;
      this.post(moved, list);
    } else {
      if (out.length === 0) return;
      this.#out = [];
      this.#outChars = 0;
      this.post(out.length === 1 ? out[0] : { troupe: 'frames', frames: out });
    }
    if (closing !== true) this.ondrain?.();
  };

  /** Forget what waits (the connection closed). */
  protected dropQueued(): void {
    this.#out = [];
    this.#outChars = 0;
    this.#moved = [undefined];
    this.#movedList = [];
  }

  /**
   * Take one posted message: frames go to core; returns a control message (an object tagged
   * `troupe`, other than `frames`) for the adapter, undefined otherwise (the app's own messages
   * are ignored, unless they are strings or arrays: those are troupe's).
   */
  protected receivePosted(data: unknown): { troupe: string; [k: string]: unknown } | undefined {
    if (this.closed) return undefined;
    if (typeof data === 'string') {
      this.#frame(data);
      return undefined;
    }
    if (Array.isArray(data)) {
      this.#withMoved(data);
      return undefined;
    }
    if (typeof data !== 'object' || data === null || !('troupe' in data)) return undefined;
    const msg = data as { troupe: string; frames?: unknown };
    if (msg.troupe !== 'frames') return msg;
    if (!Array.isArray(msg.frames)) {
      this.fail('PROTOCOL_ERROR: malformed frame batch');
      return undefined;
    }
    this.#frames(msg.frames);
    return undefined;
  }

  /** `[frames, id, count, ...items, …]`: the moved objects first (the frames hold their placeholders). */
  #withMoved(data: unknown[]): void {
    const frames = data[0];
    if (typeof frames !== 'string' && !Array.isArray(frames)) {
      this.fail('PROTOCOL_ERROR: malformed frame batch');
      return;
    }
    for (let i = 1; i < data.length; ) {
      const n = data[i + 1];
      if (!Number.isSafeInteger(n) || (n as number) < 0 || i + 2 + (n as number) > data.length) {
        this.fail('PROTOCOL_ERROR: malformed transfer');
        return;
      }
      this.acceptMoved(data[i], data.slice(i + 2, i + 2 + (n as number)));
      if (this.closed) return;
      i += 2 + (n as number);
    }
    if (typeof frames === 'string') this.#frame(frames);
    else this.#frames(frames);
  }

  #frames(frames: unknown[]): void {
    for (const frame of frames) {
      if (this.closed) return; // the handler closed the connection
      if (typeof frame !== 'string') {
        this.fail('PROTOCOL_ERROR: a frame is not a string');
        return;
      }
      this.#frame(frame);
    }
  }

  #frame(frame: string): void {
    if (!this.deliver(frame))
      this.fail('PROTOCOL_ERROR: too many frames before the link was attached');
  }
}

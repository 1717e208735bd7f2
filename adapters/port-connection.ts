/**
 * A {@link Connection} over a message port (the heart of `troupe/worker`). Browser-safe.
 *
 * On the port, a frame is posted as the plain string (cheap to structured-clone), frames with
 * moved objects as an array (see `PostedConnection`). Everything else troupe posts is an object
 * tagged `troupe` (see {@link PortControl}); other objects are ignored, so an app may share the
 * endpoint for messages of its own (but not for strings or arrays).
 */
import { TroupeError, type Connection } from '../core/index.ts';
import { PostedConnection } from './base-connection.ts';

/**
 * Anything that posts and receives messages: a `Worker`, a worker's `self`, a `MessagePort`,
 * or Node's `Worker`/`parentPort`/`MessagePort`. Node-style `on`/`off` is preferred when present
 * (it hands over the data itself); otherwise `addEventListener` with `event.data`.
 */
export interface PortEndpoint {
  postMessage(message: unknown): void;
  /** `transfer`: objects to move rather than copy (used for transfer lists; see `send(msg, { transfer })`). */
  postMessage(message: unknown, transfer: never[]): void;
  addEventListener?(type: string, listener: (event: unknown) => void): void;
  removeEventListener?(type: string, listener: (event: unknown) => void): void;
  on?(event: string, listener: (value: unknown) => void): unknown;
  off?(event: string, listener: (value: unknown) => void): unknown;
  /** Browser `MessagePort`s deliver nothing until started. */
  start?(): void;
  /** Present on `Worker` objects: the host reports their failure, and {@link PortConnectionOptions.terminate} uses it. */
  terminate?(): unknown;
}

/**
 * The non-frame messages on the port. `open` is posted by each end when it starts listening and
 * answered with `ready`: frames wait until the other end is known to listen, because a `Worker`
 * object drops messages that arrive before its owner added a listener.
 */
export type PortControl =
  | { troupe: 'open'; secret?: string }
  | { troupe: 'ready'; secret?: string }
  | { troupe: 'frames'; frames: string[] }
  | { troupe: 'close'; reason?: string };

/** Most transfers received and not yet taken by their envelope (the oldest is dropped past it). */
const MAX_STAGED = 4096;

/** Options of {@link createPortConnection}. */
export interface PortConnectionOptions {
  /** Description of the other end. @default 'port' */
  label?: string;
  /** Call `endpoint.terminate()` when the connection closes (for a worker this side owns). @default false */
  terminate?: boolean;
  /** A secret to hand the other end in the opening exchange (only to a worker you spawned). @default undefined */
  shareSecret?: string;
}

/** A {@link Connection} over a {@link PortEndpoint}. */
export interface PortConnection extends Connection {
  /**
   * Resolves when the other end is listening, with the secret it shared, if any; rejects with
   * `TRANSPORT_CLOSED` if the connection closes first.
   */
  readonly opened: Promise<{ secret?: string }>;
}

/**
 * Wrap a message endpoint as a {@link Connection}. Frames sent in one tick leave as one message;
 * `close()` tells the other end with a control message. The connection also closes at once when
 * the host reports the other end gone: a `Worker`'s `error` (and in Node its `exit`), a Node
 * port's `close`, a `messageerror`. A worker killed without notice (a browser `terminate()` by
 * someone else) is caught by core's heartbeat timeout.
 *
 * @example
 * const { port1, port2 } = new MessageChannel();
 * await Promise.all([a.attach(createPortConnection(port1), true), b.attach(createPortConnection(port2), false)]);
 */
export function createPortConnection(
  endpoint: PortEndpoint,
  options: PortConnectionOptions = {},
): PortConnection {
  return new PortLink(endpoint, options);
}

class PortLink extends PostedConnection implements PortConnection {
  readonly label: string;
  readonly opened: Promise<{ secret?: string }>;
  #endpoint: PortEndpoint;
  #options: PortConnectionOptions;
  #unlisten: (() => void)[] = [];
  #resolveOpened!: (info: { secret?: string }) => void;
  #rejectOpened!: (err: TroupeError) => void;
  #nextStage = 1;
  /**
   * Objects the peer moved to us, until the envelope that holds them is read: transfer ids (in
   * the order posted, so increasing) beside their objects, from `#stagedHead` on.
   */
  #stagedIds: number[] = [];
  #stagedItems: unknown[][] = [];
  #stagedHead = 0;

  constructor(endpoint: PortEndpoint, options: PortConnectionOptions) {
    super();
    this.#endpoint = endpoint;
    this.#options = options;
    this.label = options.label ?? 'port';
    this.opened = new Promise((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.opened.catch(() => {}); // observed through `opened` or `onclose`; never unhandled
    this.#listen('message', (data) => this.#receive(data));
    this.#listen('messageerror', () =>
      this.#shut('PROTOCOL_ERROR: a message could not be deserialized', true),
    );
    // Node ports report the other side closing (also when the worker holding it died).
    this.#listen('close', () => this.#shut('port closed', false));
    if (typeof endpoint.terminate === 'function') {
      // Only on Worker objects: inside a worker, `self`'s error event is the worker's own business.
      this.#listen('error', (e) => this.#shut(`worker error: ${describe(e)}`, false));
      this.#listen('exit', (code) => this.#shut(`worker exited (code ${String(code)})`, false));
    }
    endpoint.start?.();
    this.post({ troupe: 'open', ...this.#secret() });
  }

  close(): void {
    if (this.closed) return;
    // Frames queued now still leave first (the port keeps order). Not yet sure the other end
    // listens? Post them anyway: a port holds them for its listener; a Worker object that drops
    // them would drop the close message too.
    this.flush(true);
    this.post({ troupe: 'close' });
    this.#shut('closed by this side', false);
  }

  #receive(data: unknown): void {
    const msg = this.receivePosted(data) as PortControl | undefined;
    switch (msg?.troupe) {
      case 'open':
      case 'ready':
        // Our own `open` may have been dropped (nobody listened yet): answer, so the peer knows.
        if (msg.troupe === 'open') this.post({ troupe: 'ready', ...this.#secret() });
        if (this.peerReady) return;
        this.#resolveOpened(typeof msg.secret === 'string' ? { secret: msg.secret } : {});
        this.markPeerReady();
        return;
      case 'close':
        return this.#shut('closed by peer', false);
    }
  }

  protected override acceptMoved(id: unknown, items: unknown): void {
    const ids = this.#stagedIds;
    if (
      !Number.isSafeInteger(id) ||
      (id as number) <= 0 ||
      !Array.isArray(items) ||
      (ids.length > 0 && (id as number) <= ids[ids.length - 1])
    ) {
      return this.fail('PROTOCOL_ERROR: malformed transfer');
    }
    // Full: forget the oldest (its envelope, if it ever comes, fails to decode and is reported).
    if (ids.length - this.#stagedHead >= MAX_STAGED) this.#dropStaged(this.#stagedHead + 1);
    ids.push(id as number);
    this.#stagedItems.push(items);
  }

  /** Forget the staged objects before index `to`. */
  #dropStaged(to: number): void {
    const items = this.#stagedItems;
    for (let i = this.#stagedHead; i < to; i++) items[i] = NONE;
    this.#stagedHead = to;
    if (to === items.length) {
      // Empty (the usual case: each envelope takes its objects): start over.
      this.#stagedIds.length = 0;
      items.length = 0;
      this.#stagedHead = 0;
    } else if (to > 1024 && to * 2 > items.length) {
      this.#stagedIds.splice(0, to);
      items.splice(0, to);
      this.#stagedHead = 0;
    }
  }

  stageTransfer(items: readonly object[], transfer: readonly object[]): number {
    const id = this.#nextStage++;
    if (this.closed) return id;
    // A SharedArrayBuffer is shared by posting it; listing it in the host's transfer list throws.
    let moved = transfer;
    if (SAB !== undefined) {
      for (let i = 0; i < transfer.length; i++) {
        if (transfer[i] instanceof SAB) {
          moved = transfer.filter((x) => !(x instanceof SAB));
          break;
        }
      }
    }
    const unmovable = refusal(moved);
    if (unmovable !== undefined)
      throw new TroupeError('SERIALIZATION', `cannot transfer: ${unmovable}`);
    if (allBuffers(moved)) {
      // Core posts them before the send returns (`postStaged`): the host's post detaches them.
      this.queueMoved(id, items as object[], moved);
      return id;
    }
    // Other kinds of object (ports, a browser's transferables): the host's checks decide whether
    // they can move, so move them now (no copy) into objects only the connection holds, which
    // the post then moves on to the peer; a refusal is the sender's error, not the link's. A
    // typed array over a moved buffer is made again over the new one (its offsets read before).
    const views = viewsOver(items, moved);
    let fresh: object[];
    try {
      fresh = moveOut(moved);
    } catch (err) {
      // The host refused the list (a detached buffer, an object it cannot move): the link is fine.
      throw new TroupeError('SERIALIZATION', `cannot transfer: ${describe(err)}`, { cause: err });
    }
    const held = items.slice() as object[];
    for (let i = 0; i < held.length; i++) {
      const j = moved.indexOf(held[i]);
      if (j >= 0) held[i] = fresh[j];
    }
    if (views !== undefined)
      for (const v of views)
        held[v.at] = new v.ctor(fresh[v.buffer] as ArrayBuffer, v.offset, v.length);
    this.queueMoved(id, held, fresh);
    return id;
  }

  takeTransfer(id: number): readonly unknown[] | undefined {
    const ids = this.#stagedIds;
    let at = this.#stagedHead;
    // Ids are staged, posted and read in order: one older than `id` still here belongs to an
    // envelope the sender never sent (its link refused it), so it is dropped now.
    while (at < ids.length && ids[at] < id) at++;
    if (at === ids.length || ids[at] !== id) {
      if (at > this.#stagedHead) this.#dropStaged(at);
      return undefined;
    }
    const items = this.#stagedItems[at];
    this.#dropStaged(at + 1);
    return items;
  }

  protected fail(reason: string): void {
    this.#shut(reason, true);
  }

  #secret(): { secret?: string } {
    return this.#options.shareSecret === undefined ? {} : { secret: this.#options.shareSecret };
  }

  /** Close locally (`tellPeer` when this side ends it for a reason the peer should hear of). */
  #shut(reason: string, tellPeer: boolean): void {
    this.finish(reason, () => {
      if (tellPeer) this.post({ troupe: 'close', reason });
      this.dropQueued();
      this.#dropStaged(this.#stagedItems.length);
      for (const off of this.#unlisten.splice(0)) off();
      if (this.#options.terminate) Promise.resolve(this.#endpoint.terminate?.()).catch(() => {});
      if (!this.peerReady)
        this.#rejectOpened(
          new TroupeError('TRANSPORT_CLOSED', `${this.label} closed before it opened: ${reason}`),
        );
    });
  }

  protected post(message: unknown, transfer?: object[]): void {
    try {
      if (transfer === undefined) this.#endpoint.postMessage(message);
      else this.#endpoint.postMessage(message, transfer as never[]);
    } catch (err) {
      if (transfer !== undefined && Array.isArray(message) && !this.closed) {
        // The host refused to move an object the checks passed (a browser will not detach a
        // WebAssembly memory's buffer): the frames still go, without the objects; the envelope
        // that needed them fails where it arrives (`INVALID_MESSAGE`, reported there).
        const frames = message[0] as string | string[];
        if (typeof frames === 'string') this.post(frames);
        else if (frames.length > 0) this.post({ troupe: 'frames', frames });
        return;
      }
      // A closed port or a terminated worker: the connection is gone.
      if (!this.closed) queueMicrotask(() => this.#shut(`cannot post: ${describe(err)}`, false));
    }
  }

  #listen(type: string, fn: (value: unknown) => void): void {
    const ep = this.#endpoint as {
      on?: (t: string, f: (v: unknown) => void) => unknown;
      off?: (t: string, f: (v: unknown) => void) => unknown;
      removeListener?: (t: string, f: (v: unknown) => void) => unknown;
      addEventListener?: (t: string, f: (e: { data?: unknown }) => void) => void;
      removeEventListener?: (t: string, f: (e: { data?: unknown }) => void) => void;
    };
    if (typeof ep.on === 'function') {
      ep.on(type, fn);
      this.#unlisten.push(() => (ep.off ?? ep.removeListener)?.call(ep, type, fn));
    } else if (typeof ep.addEventListener === 'function') {
      const handler = (e: { data?: unknown }) => fn(type === 'message' ? e.data : e);
      ep.addEventListener(type, handler);
      this.#unlisten.push(() => ep.removeEventListener?.(type, handler));
    }
  }
}

/** The host's `SharedArrayBuffer`, where it has one. */
const SAB = (globalThis as { SharedArrayBuffer?: new () => object }).SharedArrayBuffer;
/** Placeholder of staged objects taken or forgotten. */
const NONE: unknown[] = [];

function allBuffers(moved: readonly object[]): boolean {
  for (let i = 0; i < moved.length; i++) if (!(moved[i] instanceof ArrayBuffer)) return false;
  return true;
}

/**
 * Why the host would refuse to move `moved`, checked before anything leaves (so that a refusal
 * is the sender's error, not a failed post that closes the link): a buffer listed twice, or
 * one already detached (moved before; Node's post would send it empty instead of throwing).
 */
function refusal(moved: readonly object[]): string | undefined {
  for (let i = 0; i < moved.length; i++) {
    const b = moved[i];
    for (let j = 0; j < i; j++) if (moved[j] === b) return 'an object is listed twice';
    // A detached buffer's length is 0; so is an empty one's, which a view can still be made over.
    if (b instanceof ArrayBuffer && b.byteLength === 0 && !viewable(b))
      return 'a buffer is detached (it was moved before)';
  }
  return undefined;
}

function viewable(b: ArrayBuffer): boolean {
  try {
    new Uint8Array(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * New objects holding what `moved` held, the originals detached (no copy), by `structuredClone`
 * with the list as its own transfer list.
 * @throws what the host throws for an object it cannot move
 */
function moveOut(moved: readonly object[]): object[] {
  return structuredClone(moved as object[], { transfer: moved as Transferable[] });
}

type ViewCtor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => object;

/** Where `items` holds typed arrays (or DataViews) over a buffer in `moved`, and their shape. */
function viewsOver(
  items: readonly object[],
  moved: readonly object[],
): { at: number; buffer: number; ctor: ViewCtor; offset: number; length: number }[] | undefined {
  let out:
    | { at: number; buffer: number; ctor: ViewCtor; offset: number; length: number }[]
    | undefined;
  for (let i = 0; i < items.length; i++) {
    const v = items[i];
    if (!ArrayBuffer.isView(v)) continue;
    const buffer = moved.indexOf(v.buffer);
    if (buffer < 0) continue;
    const length =
      v instanceof DataView ? v.byteLength : (v as unknown as { length: number }).length;
    (out ??= []).push({
      at: i,
      buffer,
      ctor: v.constructor as ViewCtor,
      offset: v.byteOffset,
      length,
    });
  }
  return out;
}

function describe(x: unknown): string {
  if (typeof x === 'object' && x !== null && 'message' in x) {
    // A browser's ErrorEvent for a script that failed to load has an empty message.
    return (
      String((x as { message: unknown }).message) ||
      'it failed (script not loaded, or an uncaught error)'
    );
  }
  return String(x);
}

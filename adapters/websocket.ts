/**
 * troupe/websocket — links over WebSocket, dialing side: the standard `WebSocket` (browsers,
 * Node ≥ 22, or an injected constructor such as `ws`'s). Browser-safe; the Node server lives in
 * `troupe/websocket-server`. Each frame is one message: a text message, or a binary one holding
 * the frame's Latin-1 bytes when the frame is a byte string with characters above U+007F (binary
 * attachments: see core/codec.ts), so binary payloads cross at 1x instead of UTF-8's 2x.
 */
import { TroupeError, type Transport } from '../core/index.ts';
import { BaseConnection } from './base-connection.ts';
import { bytesToByteString, byteStringToBytes, isByteString } from './byte-string.ts';

/** The part of the standard WebSocket API the adapter uses (browsers, Node ≥ 22, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array): void;
  /** Set to `'arraybuffer'` by the adapter, so binary messages arrive as bytes, not Blobs. */
  binaryType?: string;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: unknown) => void): void;
  removeEventListener(type: string, listener: (event: unknown) => void): void;
}

/** A `WebSocket` constructor: the global one, or `ws`'s in Node 20. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

const OPEN = 1;
/** WebSocket close codes used here (RFC 6455 §7.4.1). */
const CLOSE_NORMAL = 1000;
const CLOSE_UNSUPPORTED_DATA = 1003;

/**
 * Wrap an open WebSocket as a {@link Connection}. `close()` fires `onclose` at once on this side
 * and starts the WebSocket closing handshake; the other side's `onclose` fires when it arrives.
 * A binary message is a frame in Latin-1 bytes; a message over the receiving
 * `ws` server's `maxPayload` closes it with `FRAME_TOO_LARGE: …`.
 */
export function createWebSocketConnection(
  socket: WebSocketLike,
  label: string,
): WebSocketConnection {
  return new WebSocketConnection(socket, label);
}

/** @internal The connections a transport opened, so its `close()` can close them. */
export type ConnectionSet = Set<WebSocketConnection>;

/** A {@link Connection} over one WebSocket. */
export class WebSocketConnection extends BaseConnection {
  readonly label: string;
  #socket: WebSocketLike;
  #error = '';
  #unlisten: (() => void)[] = [];
  #owner: ConnectionSet | undefined;

  /** `owner`, when given, holds this connection while it is open. */
  constructor(socket: WebSocketLike, label: string, owner?: ConnectionSet) {
    super();
    this.#socket = socket;
    this.label = label;
    this.#owner = owner;
    owner?.add(this);
    socket.binaryType = 'arraybuffer';
    this.#on('message', (e: { data: unknown }) => {
      const data = e.data;
      let frame: string;
      if (typeof data === 'string') frame = data;
      else if (data instanceof ArrayBuffer) frame = bytesToByteString(new Uint8Array(data));
      else if (data instanceof Uint8Array) frame = bytesToByteString(data);
      else
        return this.#abort(
          'PROTOCOL_ERROR: a message that is neither text nor bytes',
          CLOSE_UNSUPPORTED_DATA,
        );
      if (!this.deliver(frame))
        this.#abort(
          'PROTOCOL_ERROR: too many frames before the link was attached',
          CLOSE_UNSUPPORTED_DATA,
        );
    });
    this.#on('error', (e: { error?: { code?: string; message?: string }; message?: string }) => {
      // `ws` says why (its ErrorEvent carries the error); browsers never do.
      const err = e.error;
      if (err?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.#error = `FRAME_TOO_LARGE: ${err.message ?? 'message over maxPayload'}`;
      else
        this.#error ||= `websocket error${err?.message || e.message ? `: ${err?.message ?? e.message}` : ''}`;
    });
    this.#on('close', (e: { code?: number; reason?: string }) => {
      this.#finish(
        this.#error || `closed by peer (${e.code ?? '?'}${e.reason ? ` ${e.reason}` : ''})`,
      );
    });
  }

  /** Bytes the socket has queued but not yet sent. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  send(frame: string): void {
    if (this.closed || this.#socket.readyState !== OPEN) return;
    try {
      this.#socket.send(isByteString(frame) ? byteStringToBytes(frame) : frame);
    } catch (err) {
      this.#abort(`send failed: ${(err as Error).message}`, CLOSE_NORMAL);
    }
  }

  close(): void {
    if (this.closed) return;
    this.#closeSocket(CLOSE_NORMAL, 'closed');
    this.#finish('closed by this side');
  }

  /** Close because the peer broke the rules; `reason` starts with an error code. */
  #abort(reason: string, code: number): void {
    if (this.closed) return;
    this.#closeSocket(code, reason.slice(0, 120)); // a close reason is at most 123 bytes
    this.#finish(reason);
  }

  #closeSocket(code: number, reason: string): void {
    try {
      this.#socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  #finish(reason: string): void {
    this.finish(reason, () => {
      this.#owner?.delete(this);
      for (const off of this.#unlisten.splice(0)) off();
    });
  }

  #on<E>(type: string, fn: (event: E) => void): void {
    const socket = this.#socket as unknown as {
      addEventListener(t: string, f: (e: E) => void): void;
      removeEventListener(t: string, f: (e: E) => void): void;
    };
    socket.addEventListener(type, fn);
    this.#unlisten.push(() => socket.removeEventListener(type, fn));
  }
}

/** Options of {@link createWebSocketTransport}. */
export interface WebSocketTransportOptions {
  /** The WebSocket constructor (pass `ws`'s `WebSocket` on Node 20). @default globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** The secret links made through this transport prove (a relay's page credential). @default the node's secret */
  secret?: string;
  /** Give up dialing after this many ms, with `TRANSPORT_CLOSED`. @default 10000 */
  connectTimeout?: number;
  /** WebSocket subprotocols to offer. @default none */
  protocols?: string | string[];
  /**
   * Called before every dial with the address given to `connect` or `join`; the transport dials
   * the address it returns instead. For a page behind a relay, {@link relayCredentialAddress}
   * fetches a fresh credential each time. A rejection fails that dial with `TRANSPORT_CLOSED`
   * (`join` redials). @default the address as given
   */
  resolve?: (address: string) => string | Promise<string>;
}

/**
 * A transport that dials `ws://host:port/path` and `wss://…` addresses with the standard
 * WebSocket. It does not listen (a page cannot); Node nodes accept with `troupe/websocket-server`.
 * @throws {TroupeError} `TRANSPORT_CLOSED` at creation when there is no WebSocket constructor.
 * @example
 * const node = createNode({ transports: [createWebSocketTransport({ secret: credential })] });
 * const relay = await node.connect('wss://relay.example:8443/troupe');
 */
export function createWebSocketTransport(options: WebSocketTransportOptions = {}): Transport {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof Ctor !== 'function') {
    throw new TroupeError(
      'TRANSPORT_CLOSED',
      'no WebSocket here: pass { WebSocket } (on Node 20, `import { WebSocket } from "ws"`)',
    );
  }
  const timeout = options.connectTimeout ?? 10_000;
  const open: ConnectionSet = new Set();
  let closed = false;
  return {
    name: 'websocket',
    ...(options.secret !== undefined && { secret: options.secret }),
    canConnect: isWebSocketAddress,
    async connect(address) {
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      const url = options.resolve ? await options.resolve(address) : address;
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      return dialWebSocket(() => new Ctor(url, options.protocols), url, timeout, open);
    },
    async close() {
      closed = true;
      for (const conn of [...open]) conn.close();
    },
  };
}

/**
 * A {@link WebSocketTransportOptions.resolve} for a page behind a relay: before each dial, fetch
 * a credential from the relay's `GET /troupe/credential` (`credentialUrl`) and dial its `ws` URL.
 * The token in that URL expires (`expiresAt`), and a restarted relay signs tokens with a new key,
 * so a page that redials needs a fresh one. Each fetch after the first renews the last token
 * (`?renew=<token>`), so the page keeps its id namespace: the relay binds a page's node id to
 * the credential it linked with, and refuses it to pages holding other credentials while the
 * page redials. The browser secret is not refreshed: the transport
 * keeps proving the one it was made with, and a relay restarted with another one refuses the page
 * (`UNAUTHORIZED`, after which `join` stops redialing; the page must reload). Give the relay a
 * fixed browser secret (`--browser-secret`) for pages to ride out its restarts.
 * `timeout` bounds each fetch (ms, default 10000).
 * @throws {TroupeError} `TRANSPORT_CLOSED` (from the returned function) when the relay does not
 *   answer in time or answers without a `ws` URL.
 * @example
 * const credentialUrl = 'http://127.0.0.1:8787/troupe/credential';
 * const cred = await (await fetch(credentialUrl)).json();
 * const ws = createWebSocketTransport({ secret: cred.secret, resolve: relayCredentialAddress(credentialUrl) });
 * const node = createNode({ name, secret: cred.secret, transports: [ws] });
 * await node.join(cred.ws); // redials whenever the link is lost, with a fresh token each time
 */
export function relayCredentialAddress(
  credentialUrl: string,
  options: { timeout?: number } = {},
): () => Promise<string> {
  const timeout = options.timeout ?? 10_000;
  // The last token: renewing it keeps the page's id namespace at the relay (its node id stays
  // bound to this page while it redials).
  let last: string | undefined;
  return async () => {
    let body: { ws?: unknown; token?: unknown };
    const url = last
      ? `${credentialUrl}${credentialUrl.includes('?') ? '&' : '?'}renew=${encodeURIComponent(last)}`
      : credentialUrl;
    try {
      const res = await fetch(url, {
        cache: 'no-store',
        signal: AbortSignal.timeout(timeout),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as { ws?: unknown; token?: unknown };
    } catch (err) {
      throw new TroupeError(
        'TRANSPORT_CLOSED',
        `cannot get a credential from ${credentialUrl}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (typeof body?.ws !== 'string' || !isWebSocketAddress(body.ws)) {
      throw new TroupeError(
        'TRANSPORT_CLOSED',
        `the credential from ${credentialUrl} names no ws:// or wss:// address`,
      );
    }
    if (typeof body.token === 'string') last = body.token;
    return body.ws;
  };
}

/** Whether `address` is a `ws://` or `wss://` URL. */
export function isWebSocketAddress(address: string): boolean {
  return /^wss?:\/\//i.test(address);
}

/** `address` without its query and fragment, for labels (a token in the query stays out of logs). */
export function labelOf(address: string): string {
  return address.replace(/[?#].*$/, '');
}

/**
 * Open a socket made by `make()` and wait until it is open; rejects with `TRANSPORT_CLOSED` when
 * it fails or `timeout` ms pass first. Shared by both WebSocket transports.
 */
export function dialWebSocket(
  make: () => WebSocketLike,
  address: string,
  timeout: number,
  owner?: ConnectionSet,
): Promise<WebSocketConnection> {
  return new Promise((resolve, reject) => {
    let socket: WebSocketLike;
    try {
      socket = make();
    } catch (err) {
      reject(
        new TroupeError(
          'TRANSPORT_CLOSED',
          `cannot connect to ${labelOf(address)}: ${(err as Error).message}`,
          { cause: err },
        ),
      );
      return;
    }
    const target = socket as unknown as {
      addEventListener(
        t: string,
        f: (e: { error?: Error; message?: string; code?: number }) => void,
      ): void;
      removeEventListener(
        t: string,
        f: (e: { error?: Error; message?: string; code?: number }) => void,
      ): void;
    };
    let why = '';
    const done = (): void => {
      clearTimeout(timer);
      for (const t of ['open', 'error', 'close']) target.removeEventListener(t, handler);
    };
    const fail = (message: string): void => {
      done();
      // `ws` reports closing a socket that is still connecting as an error: nobody needs it.
      target.addEventListener('error', () => {});
      try {
        socket.close();
      } catch {
        // never opened
      }
      reject(
        new TroupeError('TRANSPORT_CLOSED', `cannot connect to ${labelOf(address)}: ${message}`),
      );
    };
    const handler = (e: {
      type?: string;
      error?: Error;
      message?: string;
      code?: number;
    }): void => {
      if (e.type === 'open') {
        done();
        resolve(new WebSocketConnection(socket, labelOf(address), owner));
      } else if (e.type === 'error') {
        why = e.error?.message ?? e.message ?? '';
      } else {
        fail(why || `closed before opening (${e.code ?? '?'})`);
      }
    };
    for (const t of ['open', 'error', 'close']) target.addEventListener(t, handler);
    const timer = setTimeout(() => fail(`no answer within ${timeout} ms`), timeout);
  });
}

import type { DataConnection, Peer } from 'peerjs';
import { TroupeError, type Connection, type Transport } from '../core/index.ts';
import { BaseConnection } from './base-connection.ts';
import { bytesToByteString, byteStringToBytes, isByteString } from './byte-string.ts';
import { importOptional } from './optional-package.ts';

/** Where the PeerServer (npm `peer`) that signals WebRTC connections runs. */
export interface PeerServerLocation {
  /** Host name or IP of the PeerServer. Required: without it peerjs would use its public cloud server. */
  host: string;
  /** Port of the PeerServer. */
  port: number;
  /** Mount path of the PeerServer (a relay mounts it at `/peerjs`). @default '/' */
  path?: string;
  /** The PeerServer's key. @default 'peerjs' */
  key?: string;
  /** Use https/wss to reach the PeerServer. @default false */
  secure?: boolean;
}

/** Options of {@link createWebRtcTransport}. */
export interface WebRtcTransportOptions {
  /** The PeerServer used for signalling (for a relay, the `peer` object of its credential). */
  signal: PeerServerLocation;
  /** This end's peer id on the PeerServer (see {@link peerIdFor}). @default a random `troupe-…` id */
  peerId?: string;
  /** ICE configuration. @default `{ iceServers: [] }` — no STUN/TURN: host candidates only */
  config?: RTCConfiguration;
  /** The handshake secret of links made through this transport (a page's browser credential). @default the node's */
  secret?: string;
  /**
   * Give up opening a data connection (or registering with the PeerServer, at the start or when
   * reconnecting to it) after this many ms: peerjs can hang silently. @default 10000
   */
  connectTimeout?: number;
  /** After `close()`, wait this long for the peer to acknowledge before tearing the connection down. @default 2000 */
  closeGrace?: number;
  /** Largest frame accepted from a peer, in UTF-16 code units; a larger one closes the connection with `FRAME_TOO_LARGE`. @default 12 Mi (3x core's default frame size) */
  maxFrameChars?: number;
  /** Frames are cut into data channel messages of at most this many UTF-16 code units (≤ 3 bytes each). @default 16384 */
  chunkChars?: number;
  /** peerjs log level (0 none … 3 all). @default 0 */
  debug?: 0 | 1 | 2 | 3;
}

// One data channel message is a tag character and text: 'f' a whole frame or the last piece of
// one, 'p' a piece with more to follow, 'x' goodbye (sent by close(), answered with 'x').
const FULL = 'f';
const PIECE = 'p';
const BYE = 'x';
const FULL_BYTE = FULL.charCodeAt(0);
const PIECE_BYTE = PIECE.charCodeAt(0);

/** A peerjs id for a node id: peerjs allows letters, digits and single `-`/`_`/space between them. */
export function peerIdFor(nodeId: string): string {
  const id = nodeId.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return id || `troupe-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * A transport over WebRTC data channels, through peerjs `DataConnection`s (ordered and reliable,
 * string messages), signalled by a PeerServer you name: never peerjs's public cloud server, and no
 * STUN/TURN unless `config` says so. Addresses are `webrtc://<peerId>`. It needs a WebRTC stack:
 * a browser, or in Node a polyfill (for example `node-datachannel/polyfill`) installed as globals
 * together with a global `WebSocket`.
 *
 * @example
 * const cred = await (await fetch('http://127.0.0.1:8080/troupe/credential')).json();
 * const rtc = createWebRtcTransport({ signal: cred.peer, secret: cred.secret, peerId: peerIdFor(name) });
 * const node = createNode({ name, secret: cred.secret, transports: [websocket, rtc] });
 * await node.listen(); // announces webrtc://<peerId>; other pages auto-dial it
 */
export function createWebRtcTransport(
  options: WebRtcTransportOptions,
): Transport & { readonly peerId: string } {
  if (!options?.signal?.host) {
    throw new TroupeError(
      'TRANSPORT_CLOSED',
      'createWebRtcTransport needs signal.host: the PeerServer to signal through',
    );
  }
  const peerId = options.peerId ?? peerIdFor(`troupe-${Math.random().toString(36).slice(2, 12)}`);
  const timeout = options.connectTimeout ?? 10_000;
  const connections = new Set<RtcConnection>();
  let peer: Peer | undefined;
  let ready: Promise<Peer> | undefined;
  let accept: ((conn: Connection) => void) | undefined;
  let closed = false;
  /** The next attempt to reach the PeerServer again, and the bound on the current one. */
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let attemptTimer: ReturnType<typeof setTimeout> | undefined;
  /** Dials waiting for the peer to be registered with the PeerServer again. */
  const whenRegistered = new Set<() => void>();
  /** Dials waiting for their data channel, by target peer id (a PeerServer "peer-unavailable" fails them early). */
  const dialing = new Map<string, Set<(err: Error) => void>>();

  const wrap = (dc: DataConnection): RtcConnection => {
    const conn = new RtcConnection(dc, options, () => connections.delete(conn));
    connections.add(conn);
    return conn;
  };

  const startPeer = (): Promise<Peer> =>
    (ready ??= new Promise<Peer>(async (resolve, reject) => {
      if (typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection !== 'function') {
        return reject(
          new TroupeError(
            'TRANSPORT_CLOSED',
            'no WebRTC in this runtime (in Node, install a polyfill such as node-datachannel/polyfill)',
          ),
        );
      }
      const { host, port, path = '/', key = 'peerjs', secure = false } = options.signal;
      // Loaded on first use: peerjs checks for WebRTC when it is evaluated, so a Node polyfill
      // installed after importing this module still counts.
      let PeerClass: typeof Peer;
      try {
        PeerClass = (await importOptional('peerjs', 'troupe/webrtc', () => import('peerjs'))).Peer;
      } catch (err) {
        ready = undefined;
        return reject(
          err instanceof TroupeError
            ? err
            : new TroupeError('TRANSPORT_CLOSED', `cannot load peerjs: ${(err as Error).message}`, {
                cause: err,
              }),
        );
      }
      if (closed) return reject(new TroupeError('TRANSPORT_CLOSED', 'transport is closed'));
      let p: Peer;
      try {
        p = new PeerClass(peerId, {
          host,
          port,
          path,
          key,
          secure,
          config: options.config ?? { iceServers: [] },
          debug: options.debug ?? 0,
        });
      } catch (err) {
        ready = undefined;
        return reject(
          new TroupeError(
            'TRANSPORT_CLOSED',
            `cannot register peer id "${peerId}": ${(err as Error).message}`,
            { cause: err },
          ),
        );
      }
      peer = p;
      let opened = false;
      /** Failed attempts to reach the PeerServer again since it was lost. */
      let attempt = 0;
      const timer = setTimeout(
        () =>
          fail(
            new Error(
              `the PeerServer at ${host}:${port}${path} did not answer within ${timeout} ms`,
            ),
          ),
        timeout,
      );
      const fail = (err: Error): void => {
        clearTimeout(timer);
        if (opened) return;
        ready = undefined;
        peer = undefined;
        p.destroy();
        reject(
          new TroupeError(
            'TRANSPORT_CLOSED',
            `cannot register peer id "${peerId}": ${err.message}`,
            { cause: err },
          ),
        );
      };
      p.on('open', () => {
        clearTimeout(timer);
        if (opened) {
          // Registered again after losing the PeerServer: the dials that waited for it go ahead.
          clearTimeout(attemptTimer);
          attempt = 0;
          for (const dial of [...whenRegistered]) dial();
          return;
        }
        opened = true;
        resolve(p);
      });
      p.on('error', (err) => {
        if (!opened) return fail(err);
        // "Could not connect to peer <id>": fail those dials now instead of at their timeout.
        if (err.type === 'peer-unavailable') {
          for (const [id, fails] of dialing)
            if (err.message.endsWith(` ${id}`)) for (const f of [...fails]) f(err);
        }
      });
      p.on('connection', (dc) => {
        // Only our own kind of channel: ordered, reliable, raw strings.
        if (closed || !accept || !dc.reliable || dc.serialization !== 'raw') return void dc.close();
        const conn = wrap(dc);
        const timer = setTimeout(() => conn.close(), timeout);
        dc.once('open', () => {
          clearTimeout(timer);
          if (closed || !accept || conn.closeReason) return conn.close(); // gone before it opened
          accept(conn);
        });
      });
      // Losing the PeerServer (a relay restart) leaves open data channels working, but no new one
      // can be signalled, to or from this peer, until its id is registered again: reconnect with
      // the same id while the transport is open, backing off up to 5 s between attempts. Each
      // attempt is bounded (peerjs waits as long as the browser's WebSocket does); a failed one
      // ends with another 'disconnected'.
      p.on('disconnected', () => {
        clearTimeout(attemptTimer);
        if (!opened || closed || p.destroyed || retryTimer) return;
        const delay = Math.min(5000, 250 * 2 ** attempt++) * (0.75 + Math.random() / 2);
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          if (closed || p.destroyed || !p.disconnected) return;
          try {
            p.reconnect();
          } catch {
            return; // destroyed meanwhile
          }
          attemptTimer = setTimeout(() => {
            if (!closed && !p.destroyed && !p.open && !p.disconnected) p.disconnect();
          }, timeout);
        }, delay);
      });
      p.on('close', () => {
        for (const conn of [...connections]) conn.close();
      });
    }));

  return {
    name: 'webrtc',
    secret: options.secret,
    peerId,
    canConnect: (address) => address.startsWith('webrtc://'),

    async connect(address) {
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      const target = address.slice('webrtc://'.length);
      if (!target || target === peerId)
        throw new TroupeError('TRANSPORT_CLOSED', `cannot dial "${address}"`);
      const p = await startPeer();
      return new Promise<Connection>((resolve, reject) => {
        let conn: RtcConnection | undefined;
        const fails = dialing.get(target) ?? new Set<(err: Error) => void>();
        let settled = false;
        const fail = (err: Error): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          whenRegistered.delete(dial);
          fails.delete(fail);
          if (!fails.size) dialing.delete(target);
          conn?.close();
          reject(
            new TroupeError('TRANSPORT_CLOSED', `cannot connect to ${address}: ${err.message}`, {
              cause: err,
            }),
          );
        };
        const timer = setTimeout(
          () =>
            fail(
              new Error(
                conn
                  ? `no data channel within ${timeout} ms`
                  : `not registered with the PeerServer within ${timeout} ms (it was lost; reconnecting)`,
              ),
            ),
          timeout,
        );
        dialing.set(target, fails);
        fails.add(fail);
        // The offer goes through the PeerServer: while the peer is not registered with it (lost,
        // reconnecting) peerjs would drop it, so wait for the registration (bounded by the timer).
        function dial(): void {
          whenRegistered.delete(dial);
          if (settled) return;
          if (closed) return fail(new Error('transport closed'));
          if (!p.open) return void whenRegistered.add(dial);
          const dc = p.connect(target, { reliable: true, serialization: 'raw' });
          if (!dc) return fail(new Error('not registered with the PeerServer'));
          const c = (conn = wrap(dc));
          dc.once('open', () => {
            if (closed) return fail(new Error('transport closed'));
            settled = true;
            clearTimeout(timer);
            fails.delete(fail);
            if (!fails.size) dialing.delete(target);
            resolve(c);
          });
          dc.once('error', (err) => fail(err));
          // ICE failed or the peer connection closed before the channel opened.
          void c.finished.then(() =>
            fail(new Error(`${c.closeReason} before the data channel opened`)),
          );
        }
        dial();
      });
    },

    async listen(onConnection) {
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      if (accept) throw new TroupeError('PROTOCOL_ERROR', 'transport is already listening');
      accept = onConnection;
      try {
        await startPeer();
      } catch (err) {
        accept = undefined;
        throw err;
      }
      return [`webrtc://${peerId}`];
    },

    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(attemptTimer);
      for (const dial of [...whenRegistered]) dial(); // they fail: the transport is closed
      const open = [...connections];
      for (const c of open) c.close();
      await Promise.all(open.map((c) => c.finished));
      peer?.destroy();
    },
  };
}

/** Below this many buffered bytes a data channel that was over core's high-water mark reports `ondrain`. */
const LOW_WATER_BYTES = 256 * 1024;

/**
 * One peerjs DataConnection, seen as a {@link Connection}. `close()` fires `onclose` at once on
 * this side and sends a goodbye behind the frames already queued; the peer fires its `onclose`
 * when the goodbye arrives and answers it, and the side that closed first then tears the
 * peer connection down (or either side does after `closeGrace`).
 */
class RtcConnection extends BaseConnection {
  readonly label: string;
  /** Resolves once the peer connection is torn down. */
  readonly finished: Promise<void>;
  #dc: DataConnection;
  #reason = '';
  #byeSent = false;
  #tornDown = false;
  #pieces: string[] = [];
  #pieceChars = 0;
  #maxChars: number;
  #chunk: number;
  #grace: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #forget: () => void;
  #done!: () => void;

  constructor(dc: DataConnection, options: WebRtcTransportOptions, forget: () => void) {
    super();
    this.#dc = dc;
    this.label = `webrtc://${dc.peer}`;
    this.#maxChars = options.maxFrameChars ?? 12 * 1024 * 1024;
    this.#chunk = Math.max(2, options.chunkChars ?? 16_384);
    this.#grace = options.closeGrace ?? 2000;
    this.#forget = forget;
    this.finished = new Promise((resolve) => (this.#done = resolve));
    dc.on('data', (data) => this.#onMessage(data));
    dc.on('close', () => this.#lost('closed by peer'));
    dc.on('error', (err) => {
      this.#reason ||= `data channel error: ${err.type ?? err.message}`;
    });
    dc.once('open', () => {
      const channel = dc.dataChannel;
      if (!channel) return;
      channel.bufferedAmountLowThreshold = LOW_WATER_BYTES;
      channel.addEventListener('bufferedamountlow', () => this.ondrain?.());
    });
    // peerjs's own 'close' has been seen to go missing: watch the ICE and connection states too.
    dc.on('iceStateChanged', (state) => {
      if (state === 'failed' || state === 'closed') this.#lost(`ICE ${state}`);
    });
    const watchPc = (): void => {
      const pc = dc.peerConnection;
      pc?.addEventListener?.('connectionstatechange', () => {
        if (pc.connectionState === 'failed' || pc.connectionState === 'closed')
          this.#lost(`peer connection ${pc.connectionState}`);
      });
    };
    if (dc.peerConnection) watchPc();
    else queueMicrotask(watchPc);
  }

  get bufferedAmount(): number {
    return this.#dc.dataChannel?.bufferedAmount ?? 0;
  }

  /** Why the connection closed (empty while open). */
  get closeReason(): string {
    return this.#reason;
  }

  send(frame: string): void {
    if (this.closed || !this.#dc.open) return;
    const n = this.#chunk;
    // A byte string (binary attachments, see core/codec.ts) goes as binary messages of Latin-1
    // bytes behind the same one-byte tag: 1 byte per character instead of UTF-8's 2.
    if (isByteString(frame)) return this.#sendBytes(frame, n);
    if (frame.length <= n) return void this.#dc.send(FULL + frame);
    let at = 0;
    while (frame.length - at > n) {
      let end = at + n;
      // Never split a surrogate pair: a lone half would be sent as U+FFFD.
      const c = frame.charCodeAt(end - 1);
      if (c >= 0xd800 && c <= 0xdbff) end--;
      this.#dc.send(PIECE + frame.slice(at, end));
      at = end;
    }
    this.#dc.send(FULL + frame.slice(at));
  }

  #sendBytes(frame: string, n: number): void {
    const bytes = byteStringToBytes(frame, 1);
    // bytes[0] is room for the tag; each piece is a view of bytes behind its own tag.
    let at = 0;
    while (frame.length - at > n) {
      const piece = bytes.slice(at, at + n + 1);
      piece[0] = PIECE_BYTE;
      this.#dc.send(piece);
      at += n;
    }
    const last = at === 0 ? bytes : bytes.slice(at);
    last[0] = FULL_BYTE;
    this.#dc.send(last);
  }

  close(): void {
    if (this.closed) return;
    this.#reason ||= 'closed by this side';
    this.finish(this.#reason);
    if (!this.#dc.open) return this.#teardown();
    // The goodbye travels behind the frames already sent; the peer answers it.
    this.#byeSent = true;
    this.#dc.send(BYE);
    this.#timer = setTimeout(() => this.#teardown(), this.#grace);
  }

  #onMessage(message: unknown): void {
    if (this.#tornDown) return;
    let data = message;
    if (data instanceof ArrayBuffer) data = bytesToByteString(new Uint8Array(data));
    else if (ArrayBuffer.isView(data))
      data = bytesToByteString(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (typeof data !== 'string' || data.length === 0)
      return this.#abort('PROTOCOL_ERROR: a data channel message that is not a tagged string');
    const tag = data[0];
    if (tag === BYE) {
      if (this.#byeSent) return this.#teardown(); // our goodbye was answered (or both closed at once)
      // The peer closes: report it, answer, and let the peer tear down (or do it after the grace).
      this.#reason = 'closed by peer';
      this.finish(this.#reason);
      this.#byeSent = true;
      this.#dc.send(BYE);
      this.#timer = setTimeout(() => this.#teardown(), this.#grace);
      return;
    }
    if (this.closed) return;
    if (tag !== FULL && tag !== PIECE)
      return this.#abort(`PROTOCOL_ERROR: unknown data channel message tag "${tag}"`);
    this.#pieceChars += data.length - 1;
    if (this.#pieceChars > this.#maxChars) {
      return this.#abort(
        `FRAME_TOO_LARGE: a frame of more than ${this.#maxChars} characters arrived; the limit is ${this.#maxChars}`,
      );
    }
    if (tag === PIECE) return void this.#pieces.push(data.slice(1));
    let frame = data.slice(1);
    if (this.#pieces.length) {
      this.#pieces.push(frame);
      frame = this.#pieces.join('');
      this.#pieces = [];
    }
    this.#pieceChars = 0;
    if (!this.deliver(frame))
      this.#abort('PROTOCOL_ERROR: too many frames before the link was attached');
  }

  /** The peer broke the adapter's rules: close at once, `reason` starting with the error code. */
  #abort(reason: string): void {
    this.#reason = reason;
    this.#lost(reason);
  }

  /** The connection is gone (closed, failed or aborted): report it and tear down. */
  #lost(reason: string): void {
    this.#reason ||= reason;
    this.finish(this.#reason);
    this.#teardown();
  }

  /** Close the peer connection (once). */
  #teardown(): void {
    if (this.#tornDown) return;
    this.#tornDown = true;
    clearTimeout(this.#timer);
    this.#pieces = [];
    this.#forget();
    this.#dc.close();
    this.#done();
  }
}

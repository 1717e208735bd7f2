import net from 'node:net';
import tls from 'node:tls';
import { Buffer } from 'node:buffer';
import { TroupeError, type Connection, type Transport } from '../core/index.ts';
import {
  createFrameDecoder,
  framePrefix,
  LATIN1_FLAG,
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_HEADER_BYTES,
  maxFrameBytes,
  writeFrame,
  writeFrameFit,
  FIT_SPARE_BYTES,
  type FrameDecoder,
} from './tcp-framing.ts';
import { parseHostPort } from './host-port.ts';

export { createFrameDecoder, encodeFrames, DEFAULT_MAX_FRAME_BYTES } from './tcp-framing.ts';
export type { FrameDecoder } from './tcp-framing.ts';

/** TLS settings of {@link createTcpTransport}; the same object serves the server and the dialer. */
export type TcpTlsOptions = Pick<
  tls.ConnectionOptions,
  | 'key'
  | 'cert'
  | 'ca'
  | 'pfx'
  | 'passphrase'
  | 'rejectUnauthorized'
  | 'servername'
  | 'minVersion'
  | 'checkServerIdentity'
> & {
  /** Ask dialers for a client certificate (mutual TLS; check it with `ca`). @default false */
  requestCert?: boolean;
};

/** Options of {@link createTcpTransport}. */
export interface TcpTransportOptions {
  /** `host:port` to accept connections on; port 0 picks a free port. The host must be dialable by peers (it is announced as is). @default '127.0.0.1:0' */
  listen?: string;
  /** Speak TLS (addresses `tls://host:port`) instead of plain TCP (`tcp://host:port`). @default undefined (plain TCP) */
  tls?: TcpTlsOptions;
  /**
   * Largest frame accepted from a peer, in bytes; a larger announced length closes the connection
   * with a `FRAME_TOO_LARGE: …` reason. Keep it at 3x core's `maxFrameSize` (characters).
   * @default 12 MiB (3 x core's default 4 Mi characters)
   */
  maxFrameBytes?: number;
  /** Give up dialing after this many ms. @default 10000 */
  connectTimeout?: number;
}

/** After `close()`, wait this long for the peer's FIN before destroying the socket. */
const CLOSE_GRACE_MS = 2000;
/**
 * A socket yields to the event loop (it pauses until the next turn) after every this many bytes
 * it hands to core. Node reads a busy socket many times per turn (libuv up to 32 reads of 64 KiB), and core
 * handles every frame as it comes, so without a budget one flooding peer could hold the loop for
 * hundreds of ms on a loaded machine: the node's other links would hear nothing from it, no
 * acks, no heartbeats, and their peers, idle and waiting, would take it for dead.
 */
const READ_TURN_BYTES = 256 * 1024;
/**
 * A tick's frames whose worst-case size ({@link maxFrameBytes}) is above this are first encoded
 * into room for one byte per character ({@link writeFrameFit}): a socket keeps the whole buffer
 * of a write it has not sent yet, so room for 3 bytes per character held 3x the bytes queued
 * (issue 14: 3 MiB per 1 MB send) and made 3x the external memory the GC must chase. Smaller
 * ones come from Node's buffer pool and need no second try when their text is not Latin-1.
 */
const FIT_MIN_BYTES = 64 * 1024;
/**
 * Frames sent while a read of at least this many bytes is handled leave after the read turn
 * (`setImmediate`), not at the end of the tick: the peer is streaming, another read likely
 * follows in the same turn, and the acks those reads make and the credit core sends from promise
 * callbacks after them share one write (issue 14: a consumer wrote each ack alone). Frames sent
 * in answer to small reads (a call, its reply) still leave at the end of the tick.
 */
const BULK_READ_BYTES = 16 * 1024;

/**
 * A transport over TCP (Node `net`), or TLS (`node:tls`) when `tls` is given. It only moves
 * frames: a 4-byte big-endian length and UTF-8 text per frame, and every frame sent in one tick
 * leaves in one `write` (while a bulk read is handled, in one `write` after the read turn). Handshake, heartbeats and reconnecting are core's; each `connect()` is a
 * fresh socket, so core can redial after a lost link.
 *
 * @example
 * const node = createNode({ name: 'a', secret, transports: [createTcpTransport({ listen: '127.0.0.1:4000' })] });
 * await node.listen();                    // ['tcp://127.0.0.1:4000']
 * await node.connect('tcp://127.0.0.1:4001');
 */
export function createTcpTransport(options: TcpTransportOptions = {}): Transport {
  const scheme = options.tls ? 'tls' : 'tcp';
  const maxBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const connections = new Set<TcpConnection>();
  let server: net.Server | undefined;
  // Every accepted socket, including TLS ones still in their handshake (not yet connections).
  const accepted = new Set<net.Socket>();
  let closed = false;

  const adopt = (socket: net.Socket, label: string): TcpConnection => {
    const conn = new TcpConnection(socket, label, maxBytes, () => connections.delete(conn));
    connections.add(conn);
    return conn;
  };

  return {
    name: scheme,
    canConnect: (address) => address.startsWith(`${scheme}://`),

    connect(address) {
      if (closed) return Promise.reject(new TroupeError('TRANSPORT_CLOSED', 'transport is closed'));
      return new Promise<Connection>((resolve, reject) => {
        const { host, port } = parseHostPort(address.slice(scheme.length + 3)); // throws → rejects
        const socket = options.tls
          ? tls.connect({
              ...options.tls,
              host,
              port,
              servername: options.tls.servername ?? (net.isIP(host) ? undefined : host),
            })
          : net.connect({ host, port });
        const fail = (err: Error): void => {
          clearTimeout(timer);
          socket.destroy();
          reject(
            new TroupeError('TRANSPORT_CLOSED', `cannot connect to ${address}: ${err.message}`, {
              cause: err,
            }),
          );
        };
        const timer = setTimeout(
          () => fail(new Error(`no answer within ${options.connectTimeout ?? 10_000} ms`)),
          options.connectTimeout ?? 10_000,
        );
        socket.once('error', fail);
        socket.once(options.tls ? 'secureConnect' : 'connect', () => {
          clearTimeout(timer);
          socket.off('error', fail);
          if (closed) return fail(new Error('transport closed'));
          resolve(adopt(socket, address));
        });
      });
    },

    async listen(onConnection) {
      if (server) throw new TroupeError('PROTOCOL_ERROR', 'transport is already listening');
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      const { host, port } = parseHostPort(options.listen ?? '127.0.0.1:0');
      const accept = (socket: net.Socket): void => {
        if (closed) return void socket.destroy();
        onConnection(adopt(socket, `${scheme}://${socket.remoteAddress}:${socket.remotePort}`));
      };
      // A failed or silent TLS handshake (10 s) never becomes a connection: node:tls drops it.
      const srv = options.tls
        ? tls
            .createServer({ handshakeTimeout: 10_000, ...options.tls }, accept)
            .on('tlsClientError', () => {})
        : net.createServer(accept);
      srv.on('connection', (socket: net.Socket) => {
        accepted.add(socket);
        socket.once('close', () => accepted.delete(socket));
      });
      server = srv;
      return new Promise((resolve, reject) => {
        srv.once('error', (err) => {
          server = undefined; // a later listen() may try again
          reject(err);
        });
        srv.listen(port, host, () => {
          srv.removeAllListeners('error');
          srv.on('error', () => {}); // after listening, errors concern single sockets
          const addr = srv.address() as net.AddressInfo;
          resolve([`${scheme}://${formatHost(host)}:${addr.port}`]);
        });
      });
    },

    async close() {
      closed = true;
      const open = [...connections];
      for (const conn of open) conn.close();
      if (server?.listening) server.close();
      // Each connection is gone once the peer answers our FIN, or after the grace period.
      await Promise.all(open.map((c) => c.closed));
      // What is left was accepted but never became a connection (a TLS handshake in progress).
      for (const socket of accepted) socket.destroy();
    },
  };
}

/** One socket, seen as a {@link Connection}. */
class TcpConnection implements Connection {
  onframe: ((frame: string) => void) | null = null;
  onclose: ((reason?: string) => void) | null = null;
  /** Set by core: the socket drained (its write buffer emptied after a write that filled it). */
  ondrain: (() => void) | null = null;
  readonly label: string;
  #socket: net.Socket;
  #closing = false;
  #closeReason = '';
  #out: string[] = [];
  #outBytes = 0;
  /** Room the queued frames need at most (see {@link maxFrameBytes}). */
  #outRoom = 0;
  #maxBytes: number;
  #decoder: FrameDecoder;
  /** Bytes read since the socket last yielded (see {@link READ_TURN_BYTES}); whether it is paused for it. */
  #readThisTurn = 0;
  #paused = false;
  /** Whether a read of at least {@link BULK_READ_BYTES} is being handled. */
  #bulkRead = false;
  /** Whether the socket has closed. */
  #gone = false;

  constructor(socket: net.Socket, label: string, maxBytes: number, forget: () => void) {
    this.#socket = socket;
    this.label = label;
    this.#maxBytes = maxBytes;
    socket.setNoDelay(true);
    const decoder = (this.#decoder = createFrameDecoder(maxBytes));
    const deliver = this.#deliver.bind(this);
    socket.on('data', (chunk: Buffer) => {
      if (this.#closing) return;
      try {
        this.#bulkRead = chunk.length >= BULK_READ_BYTES;
        decoder.push(chunk, deliver);
        this.#bulkRead = false;
        this.#readThisTurn += chunk.length;
        if (this.#readThisTurn >= READ_TURN_BYTES && !this.#paused) {
          this.#paused = true;
          socket.pause();
          setImmediate(TcpConnection.#resumeOf, this);
        }
      } catch (err) {
        this.#bulkRead = false;
        // The decoder refusing an oversize frame, or (a bug) the frame handler throwing: either
        // way the stream cannot go on, and throwing from a socket event would kill the process.
        const code = err instanceof TroupeError ? err.code : 'PROTOCOL_ERROR';
        this.#abort(`${code}: ${(err as Error).message}`);
      }
    });
    socket.on('drain', () => this.ondrain?.());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#closeReason ||= `socket error: ${err.code ?? err.message}`;
    });
    socket.on('end', () => {
      this.#closeReason ||= 'closed by peer';
    });
    socket.once('close', () => {
      forget();
      this.#gone = true;
      this.#closing = true;
      this.#out = [];
      this.#outBytes = 0;
      this.#outRoom = 0;
      const cb = this.onclose;
      this.onclose = null;
      cb?.(this.#closeReason || 'connection closed');
    });
  }

  /** A frame decoded: to core. The frame handler may close the connection (core refusing a frame): deliver nothing after. */
  #deliver(frame: string): void {
    if (!this.#closing) this.onframe?.(frame);
  }

  /** Resolves when the socket has closed (made when asked: an open connection holds no promise). */
  get closed(): Promise<void> {
    if (this.#gone) return Promise.resolve();
    return new Promise((resolve) => this.#socket.once('close', () => resolve()));
  }

  /** Read budget: the next turn of the event loop has come, read on. */
  static #resumeOf(conn: TcpConnection): void {
    conn.#paused = false;
    conn.#readThisTurn = 0;
    // Also while closing: a paused socket would not see the peer's FIN (the close would wait for
    // its grace period); what it reads then is dropped by the data handler.
    if (!conn.#gone) conn.#socket.resume();
  }

  static #flushOf(conn: TcpConnection): void {
    conn.#flush();
  }

  /** Core lowers the limit until the peer has authenticated (see Connection.limitFrameBytes). */
  limitFrameBytes(max: number | undefined): void {
    this.#decoder.maxBytes = max === undefined ? this.#maxBytes : Math.min(max, this.#maxBytes);
  }

  /** Bytes the socket still holds, plus this tick's frames at one byte per character. */
  get bufferedAmount(): number {
    return this.#socket.writableLength + this.#outBytes;
  }

  send(frame: string): void {
    if (this.#closing) return;
    // A frame whose worst-case size is within the limit needs no exact count here: #flush
    // encodes it into room for the worst case and counts what it wrote.
    if (3 * frame.length > this.#maxBytes) {
      const size = (framePrefix(frame) & ~LATIN1_FLAG) >>> 0;
      if (size > this.#maxBytes) {
        // Dropping it would silently break the stream's order; the peer would refuse it anyway.
        return this.#abort(
          `FRAME_TOO_LARGE: refusing to send a frame of ${size} bytes; the limit is ${this.#maxBytes}`,
        );
      }
    }
    if (this.#out.length === 0) {
      if (this.#bulkRead) setImmediate(TcpConnection.#flushOf, this);
      else process.nextTick(TcpConnection.#flushOf, this);
    }
    this.#out.push(frame);
    // Counted as one byte per character until written (exact for ASCII).
    this.#outBytes += frame.length + FRAME_HEADER_BYTES;
    this.#outRoom += maxFrameBytes(frame);
  }

  /** Runs once per tick with frames queued: all of them leave in one write. */
  #flush(): void {
    const frames = this.#out;
    if (frames.length === 0) return;
    const room = this.#outRoom;
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    this.#outRoom = 0;
    if (!this.#socket.writable) return;
    if (room > FIT_MIN_BYTES) {
      // #outBytes counted each frame's prefix and characters.
      const fit = Buffer.allocUnsafe(bytes + FIT_SPARE_BYTES);
      let at = 0;
      for (let i = 0; i < frames.length && at >= 0; i++) at = writeFrameFit(fit, at, frames[i]);
      if (at >= 0) return void this.#socket.write(fit.subarray(0, at));
    }
    const buf = Buffer.allocUnsafe(room);
    let at = 0;
    for (let i = 0; i < frames.length; i++) at = writeFrame(buf, at, frames[i]);
    this.#socket.write(at === room ? buf : buf.subarray(0, at));
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeReason ||= 'closed by this side';
    // Frames sent just before close (a refusal, a last batch) still go out before the FIN.
    this.#flush();
    this.#socket.end();
    const timer = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.#socket.once('close', () => clearTimeout(timer));
  }

  /** Close at once because the peer broke the framing rules; `reason` starts with the error code. */
  #abort(reason: string): void {
    this.#closeReason = reason;
    this.#closing = true;
    this.#out = [];
    this.#outBytes = 0;
    this.#outRoom = 0;
    this.#socket.destroy();
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

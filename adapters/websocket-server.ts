/**
 * troupe/websocket-server — the Node side of WebSocket links, built on `ws`: accepts browsers
 * (and Node nodes) on `ws://host:port/path` or `wss://…`, on a server of its own or on an
 * existing `http.Server`/`https.Server` that keeps serving HTTP and other upgrade paths; and dials
 * `ws://`/`wss://` addresses with `ws`'s client. Never import this in a browser bundle.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer, ClientOptions } from 'ws';
import { TroupeError, type AdmitPeer, type Connection, type Transport } from '../core/index.ts';
import {
  dialWebSocket,
  isWebSocketAddress,
  labelOf,
  WebSocketConnection,
  type ConnectionSet,
  type WebSocketLike,
} from './websocket.ts';
import { parseHostPort } from './host-port.ts';
import { importOptional } from './optional-package.ts';

/** What {@link WebSocketServerTransportOptions.verifyClient} is shown of an upgrade request. */
export interface VerifyClientInfo {
  /** The `Origin` header (browsers always send it; other clients may not). */
  origin: string | undefined;
  /** Whether the request came over TLS. */
  secure: boolean;
  /** The request URL (path and query, for a token in the query). */
  url: URL;
  /** The raw request, for headers and the remote address. */
  req: http.IncomingMessage;
}

/** Options of {@link createWebSocketServerTransport}. */
export interface WebSocketServerTransportOptions {
  /** `host:port` for a server of its own; port 0 picks a free port. Ignored with `server`. @default '127.0.0.1:0' */
  listen?: string;
  /** Attach to this server instead of listening alone; its HTTP routes and other upgrade paths stay its own. @default undefined */
  server?: http.Server | https.Server;
  /** Key and certificate: the own server speaks TLS (`wss://`). @default undefined (plain `ws://`) */
  tls?: https.ServerOptions;
  /** The path of the WebSocket endpoint. @default '/troupe' */
  path?: string;
  /** The address to announce instead of the server's own (behind a proxy, or a public name). @default derived from the server */
  publicUrl?: string;
  /** The secret links through this transport prove (a relay's page credential). @default the node's secret */
  secret?: string;
  /** Largest message accepted, in bytes (`ws` `maxPayload`); keep it at 3x core's `maxFrameSize`. @default 12 MiB */
  maxFrameBytes?: number;
  /** Accept or refuse an upgrade (an origin check, a token in the query); refused requests get 403. @default accept all */
  verifyClient?: (info: VerifyClientInfo) => boolean | Promise<boolean>;
  /**
   * Whether the peer on a connection accepted through the upgrade `info` may take the node id
   * it claims, asked once it proved the secret (see `Connection.admit`): the reason to refuse it
   * (`UNAUTHORIZED` for the peer, a `protocolError` on the node) or `undefined`. A relay binds
   * page ids to the credential in the upgrade's URL with it. @default accept every id
   */
  admit?: (peer: AdmitPeer, info: VerifyClientInfo) => string | undefined;
  /** Give up dialing after this many ms, with `TRANSPORT_CLOSED`. @default 10000 */
  connectTimeout?: number;
  /** `ws` client options for dialing (`ca` for a self-signed `wss://` peer, `headers`, …). @default {} */
  clientOptions?: ClientOptions;
}

/** A WebSocket {@link Transport} for Node, with a hook to share an HTTP server's upgrades. */
export interface WebSocketServerTransport extends Transport {
  /** The path it accepts on. */
  readonly path: string;
  /** Start accepting (on `server`, or a server of its own); resolves with the address to dial. */
  listen(onConnection: (conn: Connection) => void): Promise<string[]>;
  /**
   * Take an HTTP upgrade request if its path is this transport's: returns false, leaving the
   * socket alone, otherwise. `listen()` installs this on `server` itself; call it from your own
   * `upgrade` handler only when you route upgrades yourself.
   */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** After `close()`, wait this long for peers to finish the closing handshake. */
const CLOSE_GRACE_MS = 2000;

/** 3 x core's default `maxFrameSize` (4 Mi characters, at most 3 UTF-8 bytes each). */
export const DEFAULT_MAX_FRAME_BYTES = 12 * 1024 * 1024;

/**
 * A WebSocket transport for Node: listens with `ws` and dials with `ws`'s client.
 *
 * Sharing a server with another `ws` server (PeerServer, for one): a `WebSocketServer` made with
 * `{ server, path }` answers 400 to every upgrade on other paths and so breaks this transport's.
 * Give the other one `noServer: true` and route its path to its `handleUpgrade` yourself.
 * @example
 * const ws = createWebSocketServerTransport({ server: httpServer, path: '/troupe' });
 * const relay = createNode({ name: 'relay', transports: [ws] });
 * await relay.listen(); // ['ws://127.0.0.1:8080/troupe']
 */
export function createWebSocketServerTransport(
  options: WebSocketServerTransportOptions = {},
): WebSocketServerTransport {
  const path = options.path ?? '/troupe';
  const maxPayload = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const timeout = options.connectTimeout ?? 10_000;
  // `ws` is an optional peer dependency: loaded on first listen or dial (MISSING_PACKAGE if absent).
  let ws: Promise<typeof import('ws')> | undefined;
  const loadWs = () => (ws ??= importOptional('ws', 'troupe/websocket-server', () => import('ws')));
  let wss: WebSocketServer | undefined;
  const open: ConnectionSet = new Set();
  // The `ws` sockets behind `open`, to cut the ones whose peers do not finish the close handshake.
  const sockets = new Set<WebSocket>();
  const track = (ws: WebSocket): WebSocketLike => {
    sockets.add(ws);
    ws.once('close', () => sockets.delete(ws));
    return ws as unknown as WebSocketLike;
  };
  let accept: ((conn: Connection) => void) | undefined;
  let server: http.Server | https.Server | undefined;
  let ownServer = false;
  let closed = false;

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    // On its own server nobody else answers: refuse other paths instead of leaving them hanging.
    if (!transport.handleUpgrade(req, socket, head) && ownServer) refuse(socket, 404, 'Not Found');
  };

  const transport: WebSocketServerTransport = {
    name: 'websocket',
    path,
    ...(options.secret !== undefined && { secret: options.secret }),
    canConnect: isWebSocketAddress,

    async connect(address) {
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      const { WebSocket } = await loadWs();
      const make = () =>
        track(
          new WebSocket(address, {
            ...options.clientOptions,
            maxPayload,
            perMessageDeflate: false,
          }),
        );
      return dialWebSocket(make, address, timeout, open);
    },

    async listen(onConnection) {
      if (closed) throw new TroupeError('TRANSPORT_CLOSED', 'transport is closed');
      if (accept) throw new TroupeError('PROTOCOL_ERROR', 'transport is already listening');
      const { WebSocketServer } = await loadWs();
      if (accept) throw new TroupeError('PROTOCOL_ERROR', 'transport is already listening');
      wss = new WebSocketServer({
        noServer: true,
        maxPayload,
        clientTracking: false,
        perMessageDeflate: false,
      });
      accept = onConnection;
      if (options.server) {
        server = options.server;
        if (!server.listening) await new Promise((resolve) => server!.once('listening', resolve));
      } else {
        ownServer = true;
        const { host, port } = parseHostPort(options.listen ?? '127.0.0.1:0');
        const reply426 = (_req: http.IncomingMessage, res: http.ServerResponse) =>
          res.writeHead(426, { 'Content-Type': 'text/plain' }).end('Upgrade Required');
        server = options.tls
          ? https.createServer(options.tls, reply426)
          : http.createServer(reply426);
        const srv = server;
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(port, host, () => {
            srv.off('error', reject);
            resolve();
          });
        });
      }
      server.on('upgrade', onUpgrade);
      if (options.publicUrl) return [options.publicUrl];
      const addr = server.address() as net.AddressInfo;
      const scheme = server instanceof https.Server ? 'wss' : 'ws';
      const host =
        addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
      return [`${scheme}://${host}:${addr.port}${path}`];
    },

    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) return false;
      if (closed || !accept || !wss) {
        refuse(socket, 503, 'Service Unavailable');
        return true;
      }
      socket.on('error', () => {}); // a client vanishing mid-upgrade is not our error
      const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
      let verdict: boolean | Promise<boolean>;
      try {
        verdict = options.verifyClient
          ? options.verifyClient({ origin: req.headers.origin, secure, url, req })
          : true;
      } catch {
        verdict = false; // a hook that throws refuses; it must not take the HTTP server down
      }
      const proceed = (ok: boolean): void => {
        if (!ok) return refuse(socket, 403, 'Forbidden');
        if (closed || !accept || !wss) return refuse(socket, 503, 'Service Unavailable');
        wss.handleUpgrade(req, socket, head, (ws) => {
          const label = `websocket client ${req.socket.remoteAddress}:${req.socket.remotePort}`;
          const conn = new WebSocketConnection(track(ws), label, open);
          const admit = options.admit;
          if (admit)
            conn.admit = (peer) => admit(peer, { origin: req.headers.origin, secure, url, req });
          if (closed || !accept) return conn.close();
          accept(conn);
        });
      };
      if (verdict === true || verdict === false) proceed(verdict);
      else Promise.resolve(verdict).then(proceed, () => proceed(false));
      return true;
    },

    async close() {
      closed = true;
      for (const conn of [...open]) conn.close();
      server?.off('upgrade', onUpgrade);
      wss?.close();
      // Give peers the grace period to answer the closing handshake, then cut the rest.
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const ws of sockets) ws.terminate();
      if (ownServer && server?.listening) {
        const srv = server;
        await new Promise<void>((resolve) => {
          srv.close(() => resolve());
          srv.closeAllConnections(); // idle HTTP keep-alive connections
        });
      }
    },
  };
  return transport;
}

/** Answer an upgrade request with an HTTP error and drop the socket. */
function refuse(socket: Duplex, status: number, text: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}

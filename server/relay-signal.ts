// A PeerServer (npm `peer`) mounted on an http server the caller owns, for WebRTC signalling.
// It shares the server with other WebSocket endpoints: `ws` servers attached to one http server
// by `{ server, path }` answer every upgrade that is not theirs with 400, so the PeerServer's
// WebSocket server runs with `noServer` and the owner routes upgrades with `handleUpgrade`.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { importOptional } from '../adapters/optional-package.ts';

/** Options of {@link attachPeerServer}. */
export interface PeerServerOptions {
  /** Where the PeerServer lives (what clients pass as `path`). @default '/peerjs' */
  path?: string;
  /** The PeerServer key clients must present. @default 'peerjs' */
  key?: string;
  /** Let clients list peer ids (`GET <path>/<key>/peers`). @default true */
  allowDiscovery?: boolean;
  /** CORS origins the PeerServer's HTTP API answers (the `cors` package's `origin` option). @default true (any) */
  corsOrigin?:
    | boolean
    | string
    | RegExp
    | (string | RegExp)[]
    | ((origin: string | undefined, cb: (err: Error | null, allow?: boolean) => void) => void);
}

/** A PeerServer bound to an http server: route requests and upgrades under `path` to it. */
export interface AttachedPeerServer {
  /** The mount path (for example `/peerjs`). */
  readonly path: string;
  readonly key: string;
  /** Whether `url` belongs to the PeerServer. */
  owns(url: string): boolean;
  /** Answer an HTTP request under `path`. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
  /** Take over a WebSocket upgrade under `path`. */
  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Peer ids connected now. */
  peers(): string[];
  /** Drop every signalling socket. */
  close(): void;
}

/**
 * Mount a PeerServer on `server` (which the caller listens with and routes). peerjs clients then
 * use `{ host, port, path, key }` of that server.
 * @throws {TroupeError} `MISSING_PACKAGE` when the optional packages `peer` or `ws` are not installed.
 */
export async function attachPeerServer(
  server: http.Server,
  options: PeerServerOptions = {},
): Promise<AttachedPeerServer> {
  const [{ ExpressPeerServer }, { WebSocketServer }] = await Promise.all([
    importOptional(
      'peer',
      'the relay (its PeerServer for WebRTC signalling)',
      () => import('peer'),
    ),
    importOptional('ws', 'the relay', () => import('ws')),
  ]);
  const path = (options.path ?? '/peerjs').replace(/\/+$/, '') || '/';
  const key = options.key ?? 'peerjs';
  let wss: WebSocketServer | undefined;
  const ids = new Set<string>();
  const app = ExpressPeerServer(server, {
    path,
    key,
    allow_discovery: options.allowDiscovery ?? true,
    corsOptions: { origin: options.corsOrigin ?? true },
    createWebSocketServer: (o) => (wss = new WebSocketServer({ noServer: true, path: o.path })),
  });
  app.on('connection', (client) => ids.add(client.getId()));
  app.on('disconnect', (client) => ids.delete(client.getId()));
  // An enclosing express app would emit 'mount'; this one has none. Hand express the prototypes
  // the app already has, so its own mount handler changes nothing, and the PeerServer starts.
  const own = app as unknown as Record<'request' | 'response' | 'engines' | 'settings', object>;
  const proto = (o: object): object => Object.getPrototypeOf(o) as object;
  app.emit('mount', {
    request: proto(own.request),
    response: proto(own.response),
    engines: proto(own.engines),
    settings: proto(own.settings),
  });
  const prefix = path === '/' ? '/' : `${path}/`;
  const owns = (url: string): boolean => {
    const pathname = url.split('?')[0];
    return pathname === path || pathname.startsWith(prefix);
  };
  return {
    path,
    key,
    owns,
    handle: (req, res) => app(req, res),
    handleUpgrade(req, socket, head) {
      if (!wss) return void socket.destroy();
      const server = wss;
      server.handleUpgrade(req, socket, head, (ws) => server.emit('connection', ws, req));
    },
    peers: () => [...ids],
    close() {
      for (const ws of wss?.clients ?? []) ws.terminate();
      wss?.close();
    },
  };
}

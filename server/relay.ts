// The browser relay: one Node node that pages reach over WebSocket, that signals WebRTC between
// pages (a PeerServer), and that is a member of the TCP cluster, so cluster actors and browser
// actors reach each other through it. `troupe relay --help` for the command; `startRelay` for
// programs and tests.
//
// Trust model
// - The cluster secret (`secret`) authenticates TCP links only. It never leaves this process: no
//   HTTP answer contains it, and browser links do not prove it.
// - Pages prove a separate browser secret (random per relay start unless `browserSecret` is
//   given), both on their WebSocket link to the relay (the relay's WebSocket transport carries it
//   as its `secret`) and on WebRTC links between pages. Holding it makes a node a browser member:
//   it can message any actor, register names and spawn defined behaviours on any node, through
//   the relay. Give pages nothing you would not give a cluster member.
// - The gate is `GET /troupe/credential`. It answers only requests whose Origin is allowed
//   (default: loopback origins, http or https, any port) and whose Host names this relay (against
//   DNS rebinding); it sends CORS headers for allowed origins only. A request without Origin (a
//   same-origin page, a proxy, a non-browser client) is answered unless the browser marks it
//   cross-site (`Sec-Fetch-Site: cross-site`). The origin check keeps other web sites in a user's
//   browser out; it does not keep out local programs, which can send any header: on a shared
//   machine, bind to loopback and treat every local user as trusted, or put TLS and real
//   authentication in front.
// - A credential expires at `expiresAt`: its `ws` URL carries a token (an HMAC over the expiry
//   time under a key made at start), and the relay refuses WebSocket upgrades with a missing,
//   forged or expired token (HTTP 403) or a disallowed Origin. Links already up stay up. A page
//   that must reconnect after `expiresAt`, or after a restart (the token key is new), fetches a
//   new credential (`relayCredentialAddress` in troupe/websocket does, before every dial). The
//   browser secret itself does not rotate while the relay runs (pages already linked over WebRTC
//   keep using it); restart the relay, or pass a new `--browser-secret`, to retire it. Pages ride
//   out a restart only if it stays the same (`--browser-secret` / TROUPE_BROWSER_SECRET): a
//   page holding a retired one is refused (UNAUTHORIZED) and must reload.
// - Page ids are bound to the credential that admitted them (docs/security.md, "Identities").
//   Each credential names a namespace `ns` (random, signed into its token); a page that renews
//   its credential (`?renew=<its last token>`, as `relayCredentialAddress` does before every
//   redial) keeps its namespace. A node id a page linked with belongs to that namespace while the
//   page is linked and for `pageIdHold` after it left: a page holding another credential cannot
//   take it then (UNAUTHORIZED, a protocolError on the relay), so nobody steps into a page's id
//   while it redials.
// - The PeerServer key is random per start unless given, and only travels in credentials, so
//   only pages that passed the gate can register peer ids; the PeerServer carries signalling
//   only, and links over WebRTC still authenticate with the browser secret.
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { createNode, type Node, type NodeOptions, TroupeError } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWebSocketServerTransport } from '../adapters/websocket-server.ts';
import { attachPeerServer } from './relay-signal.ts';
import { parseHostPort } from '../adapters/host-port.ts';
import { createCliLog, logNodeEvents, type CliLog } from './cli-log.ts';
import { SECRET_REQUIRED, type SecretArgs, seedAddress, secretFrom } from './cli-args.ts';

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** The cluster secret, for TCP links. Never sent to pages. */
  secret: string;
  /** `host:port` of the one HTTP server (WebSocket `/troupe`, PeerServer `/peerjs`, `/troupe/credential`, `/troupe/peers`). @default '127.0.0.1:0' */
  listen?: string;
  /** `host:port` of the relay's TCP transport (the cluster side). @default '127.0.0.1:0' */
  tcp?: string;
  /** Cluster members to join (`host:port` or `tcp://host:port`), redialed while the relay runs. @default [] */
  seeds?: string[];
  /** The relay's node id. @default `relay-<random>` */
  name?: string;
  /** The secret pages prove (WebSocket and WebRTC links). @default random per start */
  browserSecret?: string;
  /** How long a credential's WebSocket token is valid, in ms. @default 3600000 (one hour) */
  credentialTtl?: number;
  /**
   * Origins allowed to get credentials and to open WebSocket links: exact origins
   * (`https://app.example`) or `*` for any. @default loopback origins only (`http(s)://127.0.0.1:*`, `localhost`, `[::1]`)
   */
  allowOrigins?: string[];
  /** Extra `Host` header names accepted (a public name in front of the relay); the listen host and loopback names always are. @default [] */
  allowHosts?: string[];
  /** The host put in credentials for pages to reach the relay. @default the listen host (`127.0.0.1` for `0.0.0.0`) */
  publicHost?: string;
  /** The PeerServer key. @default random per start */
  peerKey?: string;
  /**
   * How long, in ms, a page's node id stays bound to its credential's namespace after its link
   * went down (while it is up, always): a page with another credential is refused the id until
   * then; the page itself, renewing its credential, takes it back at once. @default 15000
   */
  pageIdHold?: number;
  /** More node options (heartbeats, limits). `name`, `secret` and `transports` are the relay's. @default {} */
  node?: Omit<NodeOptions, 'name' | 'secret' | 'transports'>;
}

/** What `GET /troupe/credential` answers: all a page needs to join through this relay. */
export interface RelayCredential {
  /** The browser secret: pass it as the node's `secret` (and to the WebRTC transport). */
  secret: string;
  /** When the token in `ws` expires, in ms since the epoch. */
  expiresAt: number;
  /** The WebSocket address to dial, token included: `ws://host:port/troupe?token=…`. */
  ws: string;
  /** The token alone (it is also in `ws`); `GET /troupe/credential?renew=<token>` keeps its `ns`. */
  token: string;
  /**
   * The credential's id namespace: the node ids a page links with through this credential (or a
   * renewal of it) are bound to it while the page is linked and for `pageIdHold` after.
   */
  ns: string;
  /** The PeerServer for `createWebRtcTransport({ signal: peer })`. */
  peer: { host: string; port: number; path: string; key: string; secure: boolean };
  /** The relay's node id. */
  relay: string;
}

/** What `GET /troupe/peers` answers. */
export interface RelayPeers {
  /** The relay's node id. */
  relay: string;
  /** Nodes the relay links to directly: pages (`websocket`), cluster members (`tcp`). */
  links: { node: string; transport: string; label: string; addresses: string[] }[];
  /** Every node the relay can reach now (directly or routed), itself excluded. */
  nodes: string[];
  /** Peer ids registered with the PeerServer now. */
  webrtcPeers: string[];
}

/** A running relay. */
export interface Relay {
  readonly node: Node;
  /** The HTTP base URL, for example `http://127.0.0.1:8787`. */
  readonly url: string;
  /**
   * Issue a credential (what `/troupe/credential` answers); given a token this relay issued
   * (expired or not), the new credential keeps that token's namespace.
   */
  credential(renew?: string): RelayCredential;
  /** Stop: the node (its links and transports), the PeerServer and the HTTP server. */
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** `http(s)://<loopback>(:port)?` */
function isLoopbackOrigin(origin: string): boolean {
  try {
    const u = new URL(origin);
    return (
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      LOOPBACK_HOSTS.has(u.hostname) &&
      u.origin === origin
    );
  } catch {
    return false;
  }
}

/**
 * Start a relay: one HTTP server with the WebSocket endpoint for pages, a PeerServer for WebRTC
 * signalling and the credential endpoint; a node that is also a TCP cluster member.
 * @throws {TroupeError} `TRANSPORT_CLOSED` when a port cannot be bound.
 * @example
 * const relay = await startRelay({ listen: '127.0.0.1:8787', secret: process.env.TROUPE_SECRET!, seeds: ['127.0.0.1:4000'] });
 * const cred = await (await fetch(`${relay.url}/troupe/credential`)).json();
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  if (!options.secret) throw new TroupeError('UNAUTHORIZED', 'a relay needs the cluster secret');
  const { host: listenHost, port: listenPort } = parseHostPort(options.listen ?? '127.0.0.1:0');
  const browserSecret = options.browserSecret ?? crypto.randomBytes(24).toString('base64url');
  if (browserSecret === options.secret)
    throw new TroupeError('UNAUTHORIZED', 'the browser secret must differ from the cluster secret');
  const ttl = options.credentialTtl ?? 3_600_000;
  const tokenKey = crypto.randomBytes(32);
  const peerKey =
    options.peerKey ??
    crypto
      .randomBytes(9)
      .toString('base64url')
      .replace(/[^A-Za-z0-9]/g, 'x');
  const allowAny = options.allowOrigins?.includes('*') ?? false;
  const allowed = new Set(options.allowOrigins ?? []);
  const originOk = (origin: string | undefined): boolean =>
    origin === undefined ||
    allowAny ||
    (options.allowOrigins ? allowed.has(origin) : isLoopbackOrigin(origin));
  const publicHost =
    options.publicHost ??
    (listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost);

  const server = http.createServer();
  // Every socket, so close() can end them all: an upgrade that arrives while the node shuts down
  // (a page redialing at once) finds the WebSocket transport gone and would hold server.close().
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let port = 0;
  const hostPart =
    publicHost.includes(':') && !publicHost.startsWith('[') ? `[${publicHost}]` : publicHost;
  const hosts = new Set([
    ...LOOPBACK_HOSTS,
    listenHost,
    publicHost,
    hostPart,
    ...(options.allowHosts ?? []),
  ]);
  const hostOk = (host: string | undefined): boolean =>
    !!host && (hosts.has(host.replace(/:\d+$/, '')) || hosts.has(host));

  // A token is `<expiresAt>.<ns>.<HMAC(tokenKey, "<expiresAt>.<ns>")>`.
  const sign = (expiresAt: number, ns: string): string =>
    crypto.createHmac('sha256', tokenKey).update(`${expiresAt}.${ns}`).digest('base64url');
  /** The namespace of a token this relay signed (and that has not expired, unless `anyAge`). */
  const tokenNs = (token: string | null | undefined, anyAge = false): string | undefined => {
    if (!token || token.length > 200) return undefined;
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [time, ns, mac] = parts;
    const expiresAt = Number(time);
    if (!/^\d{1,16}$/.test(time) || !/^[A-Za-z0-9_-]{1,32}$/.test(ns)) return undefined;
    if (!anyAge && expiresAt <= Date.now()) return undefined;
    const given = Buffer.from(mac);
    const wanted = Buffer.from(sign(expiresAt, ns));
    return given.length === wanted.length && crypto.timingSafeEqual(given, wanted) ? ns : undefined;
  };
  const tokenValid = (token: string | null): boolean => tokenNs(token) !== undefined;

  // Page ids bound to credential namespaces: while the page is linked (until Infinity) and for
  // pageIdHold after it left.
  const hold = options.pageIdHold ?? 15_000;
  const bindings = new Map<string, { ns: string; until: number }>();
  const admitPage = (peer: { node: string }, token: string | null): string | undefined => {
    const ns = tokenNs(token, true);
    if (ns === undefined) return 'the credential in the link request is not valid';
    const now = Date.now();
    const bound = bindings.get(peer.node);
    if (bound && bound.ns !== ns && now < bound.until)
      return `node id "${peer.node}" is bound to another page's credential (while that page is linked and ${hold} ms after it left)`;
    if (bindings.size >= 4096)
      for (const [id, b] of bindings) if (b.until <= now) bindings.delete(id);
    // Bound from now on; a link that never comes up frees it after the hold.
    bindings.set(peer.node, {
      ns,
      until: bound?.ns === ns && bound.until === Infinity ? Infinity : now + hold,
    });
    return undefined;
  };

  const peerServer = await attachPeerServer(server, {
    path: '/peerjs',
    key: peerKey,
    allowDiscovery: true,
    corsOrigin: (origin, cb) => cb(null, origin !== undefined && originOk(origin)),
  });
  const ws = createWebSocketServerTransport({
    server,
    path: '/troupe',
    secret: browserSecret,
    verifyClient: ({ origin, url: u, req }) =>
      originOk(origin) && hostOk(req.headers.host) && tokenValid(u.searchParams.get('token')),
    admit: (peer, { url: u }) => admitPage(peer, u.searchParams.get('token')),
  });
  const node = createNode({
    ...options.node,
    name: options.name ?? `relay-${crypto.randomBytes(4).toString('hex')}`,
    secret: options.secret,
    transports: [createTcpTransport({ listen: options.tcp ?? '127.0.0.1:0' }), ws],
  });

  node.events.on('linkUp', (e) => {
    const bound = bindings.get(e.node);
    if (bound) bound.until = Infinity;
  });
  node.events.on('linkDown', (e) => {
    const bound = bindings.get(e.node);
    if (bound && bound.until === Infinity && !node.peers().includes(e.node))
      bound.until = Date.now() + hold;
  });

  const credential = (renew?: string): RelayCredential => {
    const expiresAt = Date.now() + ttl;
    const ns = tokenNs(renew, true) ?? crypto.randomBytes(12).toString('base64url');
    const token = `${expiresAt}.${ns}.${sign(expiresAt, ns)}`;
    return {
      secret: browserSecret,
      expiresAt,
      ws: `ws://${hostPart}:${port}/troupe?token=${token}`,
      token,
      ns,
      peer: { host: publicHost, port, path: '/peerjs', key: peerKey, secure: false },
      relay: node.id,
    };
  };

  const peersView = (): RelayPeers => ({
    relay: node.id,
    links: node.linkStats().map((l) => ({
      node: l.node,
      transport:
        l.label.startsWith('websocket') || /^wss?:/.test(l.label)
          ? 'websocket'
          : (/^([a-z]+):\/\//.exec(l.label)?.[1] ?? 'unknown'),
      label: l.label,
      addresses: node.addressesOf(l.node),
    })),
    nodes: node.nodes().filter((n) => n !== node.id),
    webrtcPeers: peerServer.peers(),
  });

  server.on('request', (req, res) => {
    const [path, query] = (req.url ?? '/').split('?');
    if (peerServer.owns(path)) return peerServer.handle(req, res);
    if (path === '/troupe/credential' || path === '/troupe/peers')
      return gated(req, res, () =>
        path === '/troupe/credential'
          ? credential(new URLSearchParams(query ?? '').get('renew') ?? undefined)
          : peersView(),
      );
    if (path === '/troupe')
      return void res
        .writeHead(426, { 'Content-Type': 'text/plain' })
        .end('Upgrade Required: the troupe WebSocket endpoint');
    if (path === '/') {
      return void res
        .writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end(
          `troupe relay ${node.id}\n  GET /troupe/credential   a page's credential (allowed origins only)\n  GET /troupe/peers        nodes behind this relay\n  WS  /troupe              troupe links for pages\n  /peerjs                  PeerServer (WebRTC signalling)\n`,
        );
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
  });

  /** Answer a gated JSON endpoint: allowed Origin (with CORS), allowed Host, no cross-site request without Origin. */
  const gated = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: () => unknown,
  ): void => {
    const origin = req.headers.origin;
    const crossSite = origin === undefined && req.headers['sec-fetch-site'] === 'cross-site';
    if (!hostOk(req.headers.host) || !originOk(origin) || crossSite) {
      res
        .writeHead(403, { 'Content-Type': 'text/plain', Vary: 'Origin' })
        .end('Forbidden: origin or host not allowed');
      return;
    }
    const cors: Record<string, string> = origin
      ? { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' }
      : { Vary: 'Origin' };
    if (req.method === 'OPTIONS') {
      res
        .writeHead(204, {
          ...cors,
          'Access-Control-Allow-Methods': 'GET',
          'Access-Control-Max-Age': '600',
        })
        .end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...cors, Allow: 'GET' }).end();
      return;
    }
    res
      .writeHead(200, { ...cors, 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(JSON.stringify(body()));
  };

  // The PeerServer's upgrades; the WebSocket transport takes /troupe itself and leaves the rest.
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/troupe') return;
    if (peerServer.owns(path) && originOk(req.headers.origin) && hostOk(req.headers.host))
      return peerServer.handleUpgrade(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new TroupeError(
            'TRANSPORT_CLOSED',
            `cannot listen on ${options.listen}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      server.listen(listenPort, listenHost, () => resolve());
    });
    server.on('error', () => {});
    port = (server.address() as net.AddressInfo).port;
    await node.listen();
  } catch (err) {
    peerServer.close();
    await node.shutdown();
    server.close();
    throw err;
  }
  const url = `http://${hostPart}:${port}`;
  for (const seed of options.seeds ?? []) {
    node.join(seedAddress(seed)).catch(() => {
      /* reported as events; join redials until shutdown */
    });
  }

  let closing: Promise<void> | undefined;
  return {
    node,
    url,
    credential,
    close: () =>
      (closing ??= (async () => {
        await node.shutdown();
        peerServer.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await closed;
      })()),
  };
}

/** The options `troupe relay` reads (a subset of the CLI's parsed options). */
export interface RelayCliOptions extends SecretArgs {
  listen?: string;
  seed?: string[];
  name?: string;
  'tcp-listen'?: string;
  'browser-secret'?: string;
  'allow-origin'?: string[];
  'credential-ttl'?: string;
  'peer-key'?: string;
  'public-host'?: string;
  'heartbeat-timeout'?: string;
  quiet?: boolean;
}

/** The `troupe relay` usage text. */
export const RELAY_HELP = `troupe relay --listen HOST:PORT --secret S [options]

  A relay for browsers: one HTTP server on --listen with
    WS  /troupe              troupe links for pages (they prove the browser secret)
    GET /troupe/credential   { secret, expiresAt, ws, token, ns, peer: { host, port, path, key, secure }, relay }
                             for allowed origins only (CORS); the cluster secret never leaves the relay;
                             ?renew=<token> keeps that token's id namespace (page ids are bound to it)
    GET /troupe/peers        { relay, links, nodes, webrtcPeers }: what is behind the relay
    /peerjs                  a PeerServer (npm peer) for WebRTC signalling between pages
  and a member of the TCP cluster (--seed, --tcp-listen), so cluster actors and page actors
  reach each other through it.

  --listen HOST:PORT        the HTTP server (default 127.0.0.1:8787)
  --secret S                the cluster secret (or TROUPE_SECRET; --secret-env NAME)
  --seed HOST:PORT          join the cluster through this member (repeatable)
  --tcp-listen HOST:PORT    the relay's TCP address (default 127.0.0.1:0, an ephemeral port)
  --name ID                 the relay's node id (default relay-<random>)
  --browser-secret S        the secret pages prove (or TROUPE_BROWSER_SECRET; default random per
                            start). Fix it for pages to reconnect after the relay restarts
  --allow-origin ORIGIN     an origin that may get credentials and open links (repeatable; * for any;
                            default: http(s)://127.0.0.1, localhost and [::1] on any port)
  --credential-ttl SECONDS  how long a credential's WebSocket token is valid (default 3600)
  --peer-key KEY            the PeerServer key (default random per start)
  --public-host HOST        the host put in credentials (default the listen host)
`;

/** `troupe relay …`: start a relay and print where it listens; Ctrl-C stops it. */
export async function runRelay(
  o: RelayCliOptions,
  argv: string[] = [],
  out: CliLog = createCliLog('text'),
): Promise<Relay> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(RELAY_HELP);
    process.exit(0);
  }
  const secret = secretFrom(o);
  if (!secret) {
    out.error(SECRET_REQUIRED, { exit: 2 });
    process.exit(2);
  }
  const num = (v: string | undefined, what: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) {
      out.error(`--${what} must be a positive number`, { exit: 2 });
      process.exit(2);
    }
    return n;
  };
  const ttl = num(o['credential-ttl'], 'credential-ttl');
  const heartbeatTimeout = num(o['heartbeat-timeout'], 'heartbeat-timeout');
  const relay = await startRelay({
    secret,
    listen: o.listen ?? '127.0.0.1:8787',
    tcp: o['tcp-listen'],
    seeds: o.seed,
    name: o.name,
    browserSecret: o['browser-secret'] || process.env.TROUPE_BROWSER_SECRET || undefined,
    allowOrigins: o['allow-origin'],
    credentialTtl: ttl === undefined ? undefined : ttl * 1000,
    peerKey: o['peer-key'],
    publicHost: o['public-host'],
    node: heartbeatTimeout === undefined ? {} : { heartbeatTimeout },
  });
  const { node } = relay;
  const quiet = !!o.quiet;
  logNodeEvents(node, out, quiet, false);
  // Tests and scripts read this line.
  out.listening(node.id, node.addresses);
  out.out(
    `relay ${relay.url} (credential ${relay.url}/troupe/credential, PeerServer ${relay.url}/peerjs)`,
    { event: 'relay', url: relay.url },
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    out.info(`${signal}: shutting down`, { event: 'shutdown', signal });
    relay.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return relay;
}

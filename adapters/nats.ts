import {
  connect as natsConnect,
  ErrorCode,
  Events,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
  type NatsError,
  type Subscription,
} from 'nats';
import {
  Emitter,
  TroupeError,
  type Connection,
  type Discovery,
  type Node,
  type Transport,
} from '../core/index.ts';
import { BaseConnection } from './base-connection.ts';
import { natsPresence, validSubject } from './nats-presence.ts';
import {
  natsRegistry,
  type NatsRegistryOptions,
  type NatsRegistryBackend,
} from './nats-registry.ts';

export { natsRegistry } from './nats-registry.ts';
export type { NatsRegistryOptions, NatsRegistryBackend } from './nats-registry.ts';

/** Options of {@link createNatsTransport}. */
export interface NatsTransportOptions {
  /** NATS server URL(s) (`nats://127.0.0.1:4222`); list several servers of a cluster for fail-over. Ignored with `connection`. @default 'nats://127.0.0.1:4222' */
  servers?: string | string[];
  /** Use this open NATS connection instead of making one (it is not closed by `close()`). @default undefined */
  connection?: NatsConnection;
  /**
   * Passed through to `connect()` of the `nats` client: credentials (`user`/`pass`, `token`,
   * `authenticator` for nkeys / JWT creds), `tls`, timeouts. `servers` above wins.
   * @default { reconnectTimeWait: 250, maxReconnectAttempts: -1 }
   */
  connectOptions?: ConnectionOptions;
  /** First token(s) of every subject troupe uses; clusters sharing one NATS account need different prefixes. @default 'troupe' */
  prefix?: string;
  /** Give up a dial after this many ms (a dial to a subject nobody serves fails at once with `NODE_DOWN`). @default 5000 */
  connectTimeout?: number;
  /** Largest frame accepted from a peer, in bytes (reassembled from chunks); more closes the connection with `FRAME_TOO_LARGE`. @default 16 MiB */
  maxFrameBytes?: number;
  /** Re-announce this node on the discovery subject every this many ms (a missed announcement repairs itself). @default 5000 */
  announceInterval?: number;
  /**
   * When nothing arrived on a link for this many ms (a live peer's heartbeats keep it busier),
   * ask NATS whether anyone still serves the peer's subject: "no responders" (its process died,
   * its connection is gone) closes the link at once, before core's heartbeat timeout. A frozen
   * peer still holds its subscription: core's heartbeat timeout decides then. `Infinity` turns
   * the probe off. @default 800
   */
  probeAfter?: number;
  /**
   * How links are made. `'lazy'`: nodes learn of each other through presence on the discovery
   * subject (`node.nodes()` lists every member, `nodeUp`/`nodeDown` follow it), and a link
   * (handshake, heartbeats) is dialed only when something is first sent to a member; a node
   * holds one socket (to its NATS server) and links only for the pairs that talk. `'eager'`:
   * every pair links at once (the lower id dials), as a TCP mesh does. @default 'lazy'
   */
  links?: 'lazy' | 'eager';
  /**
   * With lazy links: each node publishes its presence on the discovery subject when it starts
   * (every member answers it directly), and again every `max(presenceInterval, 200 ms × members)`
   * only to repair a lost message: liveness comes from probes (see `presenceTimeout`), so what a
   * node hears does not grow with the cluster. @default 5000
   */
  presenceInterval?: number;
  /**
   * With lazy links: every node probes its two successors in the ring of member ids (a NATS
   * request to their subject) every `probeInterval`. A member whose subject NATS reports nobody
   * serves (its process died: "no responders") is down at once, everywhere (each node checks it);
   * one that leaves a probe unanswered this many ms (frozen, cut off) is down (`nodeDown`
   * `noconnection`, its names dropped), unless a link to it is still up (its heartbeats decide
   * then). This process's own stalls are not counted. Match the node's `heartbeatTimeout`.
   * @default 2500
   */
  presenceTimeout?: number;
  /** With lazy links: how often each node probes the members it watches (ms). @default presenceTimeout / 4 */
  probeInterval?: number;
  /**
   * The HTTP monitoring endpoint of the server this node connects to (`nats-server -m 8222`:
   * `http://127.0.0.1:8222`). A server cuts a slow consumer (its pending bytes past
   * `max_pending`, or a write past `write_deadline`) without telling the client, which only sees
   * a disconnect: with this set, after each disconnect the transport asks the server's `/connz`
   * why its old connection closed and emits `slowConsumer` when that was the reason.
   * @default undefined (no check: a cut shows as `disconnect`/`reconnect` only)
   */
  monitorUrl?: string;
}

/** Events of a {@link NatsTransport} (`transport.events.on('slowConsumer', …)`). */
export interface NatsTransportEvents {
  /**
   * The NATS server cut this client as a slow consumer (it read too slowly: pending bytes past
   * the server's `max_pending`). The server says so only on its monitoring endpoint: set
   * `monitorUrl` to get this event (else the cut shows as `disconnect`, then `reconnect`).
   * Frames lost in the cut close the links they belonged to (core redials, sessions settle).
   * troupe's link bounds keep its own traffic in check; look for a flood from elsewhere.
   */
  slowConsumer: { message: string };
  /** The client lost its server; it reconnects on its own (to another server of a cluster). */
  disconnect: { server: string };
  /** The client is connected again; links whose frames were lost on the way were closed (core redials). */
  reconnect: { server: string };
  /** An asynchronous error from the client or server (permissions, auth). */
  error: { message: string };
  /** A malformed message arrived on this node's subject (dropped). */
  badMessage: { reason: string };
  /** Lazy links: a node was heard on the discovery subject for the first time (or again). */
  memberUp: { node: string; subject: string };
  /** Lazy links: a member left (goodbye), left a probe unanswered past `presenceTimeout`, or nobody serves its subject. */
  memberDown: { node: string; reason: 'left' | 'timeout' | 'no responders' };
}

/** The troupe transport over NATS, with the discovery and registry that share its connection. */
export interface NatsTransport extends Transport {
  /** Transport-level events (NATS status). */
  readonly events: Emitter<NatsTransportEvents>;
  /** Find other nodes through the discovery subject: pass it as `createNode({ discovery })`. */
  readonly discovery: Discovery;
  /** Lazy links: the members this node has heard (node id → subject), itself excluded. */
  members(): Map<string, string>;
  /** The NATS connection (made on first use). */
  connection(): Promise<NatsConnection>;
  /** This node's own subject (`<prefix>.node.<random>`), the only subject frames arrive on. */
  readonly subject: string;
  /** A registry backend on JetStream KV sharing this connection: pass it as `createNode({ registry })`. */
  registry(options?: NatsRegistryOptions): NatsRegistryBackend;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Bytes kept free in each message for the header line. */
const HEADER_SLACK = 256;

/**
 * A transport over core NATS. Each node subscribes to one subject of its own; a troupe link is a
 * virtual connection between two node subjects (many per NATS connection), so a cluster of N
 * nodes holds N sockets (one per node, to its NATS server) instead of a mesh of N(N−1)/2. The
 * handshake (cluster secret), heartbeats, flow control and every envelope are core's, as on TCP.
 *
 * Wire (payload of each NATS message, `reply` set to the sender's subject): one ASCII header line
 * `<kind> <conn id> [<seq>|<subject>]` then the bytes. Kinds: `o` open (a request: no responders →
 * the dial fails at once with `NODE_DOWN`), `p` part of a frame larger than the server's
 * `max_payload`, `d` a frame's last (or only) part, `x` close, `q` a liveness probe of a silent link (a request: no responders closes the
 * link before core's heartbeat timeout), `a` a discovery announcement.
 * A gap in the sequence (frames lost while the client moved to another server) closes the link:
 * core redials, sessions are settled as on any lost link.
 *
 * @throws {TroupeError} `NODE_DOWN` from `connect()` when nobody serves the address's subject.
 * @example
 * const t = createNatsTransport({ servers: 'nats://127.0.0.1:4222' });
 * const node = createNode({ secret, transports: [t], discovery: t.discovery, registry: t.registry() });
 * await node.listen();              // ['nats:troupe.node.…']; other nodes find this one on their own
 */
export function createNatsTransport(options: NatsTransportOptions = {}): NatsTransport {
  const prefix = options.prefix ?? 'troupe';
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix))
    throw new TroupeError('INVALID_MESSAGE', `bad NATS subject prefix "${prefix}"`);
  const subject = `${prefix}.node.${randomToken()}`;
  const discoverySubject = `${prefix}.discovery`;
  const maxBytes = options.maxFrameBytes ?? 16 * 1024 * 1024;
  const connectTimeout = options.connectTimeout ?? 5000;
  const events = new Emitter<NatsTransportEvents>();
  const conns = new Map<string, NatsConn>();
  let nextConn = 0;
  let ncPromise: Promise<NatsConnection> | undefined;
  let nc: NatsConnection | undefined;
  let sub: Subscription | undefined;
  let closed = false;
  let onConnection: ((conn: Connection) => void) | undefined;
  const probeAfter = options.probeAfter ?? 800;
  let probeTimer: ReturnType<typeof setInterval> | undefined;
  /** The server's id of this client's current connection (for the slow-consumer check). */
  let cid: number | undefined;
  let onAnnouncement: ((from: string, body: Uint8Array, direct: boolean) => void) | undefined;

  const bad = (reason: string): void => events.emit('badMessage', { reason });

  const handle = (msg: Msg): void => {
    const data = msg.data;
    const nl = data.indexOf(10);
    if (nl < 0 || nl > HEADER_SLACK) return bad('no header line');
    const head = dec.decode(data.subarray(0, nl)).split(' ');
    const body = data.subarray(nl + 1);
    const [kind, cid, arg] = head;
    if (kind === 'a') return onAnnouncement?.(msg.reply ?? '', body, true);
    if (!cid || cid.length > 80) return bad('no connection id');
    const conn = conns.get(cid);
    switch (kind) {
      case 'o': {
        if (!arg || !validSubject(arg) || !msg.reply) return bad('bad open');
        if (!onConnection || closed) return; // not listening: no reply, the dialer times out or gets no responders
        if (conn) return bad('duplicate open');
        const c = new NatsConn(cid, arg, `nats:${arg}`, link, maxBytes);
        conns.set(cid, c);
        msg.respond(enc.encode('ok'));
        onConnection(c);
        return;
      }
      case 'p':
      case 'd':
        if (!conn) {
          // A frame for a connection we do not know (we restarted, or it closed): tell the sender.
          if (msg.reply && validSubject(msg.reply))
            publish(msg.reply, header('x', cid, 'unknown connection'));
          return;
        }
        conn.receive(kind === 'd', Number(arg), body);
        return;
      case 'x':
        conn?.remoteClosed(dec.decode(body) || 'closed by peer');
        return;
      case 'q':
        // A liveness probe of a silent link: answer if we have the connection.
        if (msg.reply) msg.respond(enc.encode(conn ? 'ok' : 'gone'));
        return;
      default:
        return bad(`unknown kind "${String(kind).slice(0, 8)}"`);
    }
  };

  const publish = (to: string, head: string, body?: Uint8Array): void => {
    if (!nc || nc.isClosed()) return;
    const h = enc.encode(head);
    const payload = new Uint8Array(h.length + (body?.length ?? 0));
    payload.set(h, 0);
    if (body) payload.set(body, h.length);
    try {
      nc.publish(to, payload, { reply: subject });
    } catch (err) {
      events.emit('error', { message: (err as Error).message });
    }
  };

  const link: ConnHost = {
    send(conn, frame) {
      const bytes = enc.encode(frame);
      const room = Math.max(1024, (nc?.info?.max_payload ?? 1024 * 1024) - HEADER_SLACK);
      let off = 0;
      do {
        const end = Math.min(bytes.length, off + room);
        publish(
          conn.remote,
          header(end === bytes.length ? 'd' : 'p', conn.id, String(conn.nextOut++)),
          bytes.subarray(off, end),
        );
        off = end;
      } while (off < bytes.length);
    },
    close(conn, reason) {
      conns.delete(conn.id);
      if (reason !== undefined) publish(conn.remote, header('x', conn.id, ''), enc.encode(reason));
    },
  };

  const start = (): Promise<NatsConnection> => {
    if (closed)
      return Promise.reject(new TroupeError('TRANSPORT_CLOSED', 'NATS transport is closed'));
    ncPromise ??= (async () => {
      const c =
        options.connection ??
        (await natsConnect({
          reconnectTimeWait: 250,
          maxReconnectAttempts: -1,
          ...options.connectOptions,
          servers: options.servers ?? options.connectOptions?.servers ?? 'nats://127.0.0.1:4222',
        }));
      nc = c;
      if (Number.isFinite(probeAfter)) {
        probeTimer = setInterval(probe, Math.max(50, probeAfter / 4));
        (probeTimer as { unref?: () => void }).unref?.();
      }
      sub = c.subscribe(subject, {
        callback: (err, msg) =>
          err ? events.emit('error', { message: err.message }) : handle(msg),
      });
      cid = c.info?.client_id;
      void watchStatus(c);
      return c;
    })();
    return ncPromise;
  };

  const probe = (): void => {
    if (!nc || nc.isClosed() || closed) return;
    const now = Date.now();
    for (const conn of conns.values()) {
      if (conn.probing || now - conn.lastIn < probeAfter) continue;
      conn.probing = true;
      nc.request(conn.remote, enc.encode(header('q', conn.id, '')), {
        timeout: Math.max(1000, probeAfter),
      }).then(
        (m) => {
          conn.probing = false;
          if (dec.decode(m.data) === 'gone') conn.fail('the peer no longer has this connection');
        },
        (err: NatsError) => {
          conn.probing = false;
          if (err.code === ErrorCode.NoResponders) {
            conn.fail(`nobody serves ${conn.remote} any more (NATS: no responders)`);
            presence?.gone(conn.remote);
          }
        },
      );
    }
  };

  const watchStatus = async (c: NatsConnection): Promise<void> => {
    for await (const s of c.status()) {
      const data = typeof s.data === 'string' ? s.data : JSON.stringify(s.data);
      if (s.type === Events.Disconnect) {
        events.emit('disconnect', { server: data });
        if (options.monitorUrl && cid !== undefined) void whyClosed(options.monitorUrl, cid);
      } else if (s.type === Events.Reconnect) {
        cid = c.info?.client_id;
        events.emit('reconnect', { server: data });
      } else if (s.type === Events.Error) {
        if (/slow consumer/i.test(data)) events.emit('slowConsumer', { message: data });
        else events.emit('error', { message: data });
      }
    }
  };

  /** Ask the server's monitoring endpoint why connection `id` closed: a slow consumer is an event. */
  const whyClosed = async (base: string, id: number): Promise<void> => {
    for (let attempt = 0; attempt < 5 && !closed; attempt++) {
      try {
        const res = await fetch(`${base.replace(/\/$/, '')}/connz?state=closed&cid=${id}`);
        const body = (await res.json()) as { connections?: { cid?: number; reason?: string }[] };
        const conn = body.connections?.find((x) => x.cid === id);
        if (conn) {
          if (/slow consumer/i.test(conn.reason ?? ''))
            events.emit('slowConsumer', {
              message: `the NATS server cut this client: ${conn.reason}`,
            });
          return;
        }
      } catch (err) {
        events.emit('error', { message: `monitoring endpoint: ${(err as Error).message}` });
        return;
      }
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
    }
  };

  const lazy = (options.links ?? 'lazy') === 'lazy';
  const presence = lazy
    ? natsPresence({
        start,
        own: subject,
        shared: discoverySubject,
        interval: options.presenceInterval ?? 5000,
        timeout: options.presenceTimeout ?? 2500,
        probeInterval: options.probeInterval ?? (options.presenceTimeout ?? 2500) / 4,
        setHandler: (fn) => (onAnnouncement = fn),
        sendDirect: (to, body) => publish(to, 'a\n', body),
        memberUp: (node, subject) => events.emit('memberUp', { node, subject }),
        memberDown: (node, reason) => events.emit('memberDown', { node, reason }),
      })
    : undefined;
  const discovery =
    presence?.discovery ??
    natsDiscovery(
      start,
      subject,
      discoverySubject,
      options.announceInterval ?? 5000,
      (fn) => (onAnnouncement = fn),
      (to, body) => publish(to, 'a\n', body),
    );

  let registryBackend: NatsRegistryBackend | undefined;

  return {
    name: 'nats',
    events,
    discovery,
    subject,
    members: () => new Map(presence?.members() ?? []),
    connection: start,
    registry(opts) {
      registryBackend ??= natsRegistry(start, { prefix, ...opts });
      return registryBackend;
    },
    canConnect: (address) => address.startsWith('nats:') && validSubject(address.slice(5)),
    async connect(address) {
      const c = await start();
      const remote = address.slice(5);
      if (!validSubject(remote))
        throw new TroupeError('TRANSPORT_CLOSED', `bad NATS address "${address}"`);
      const cid = `${subject.slice(subject.lastIndexOf('.') + 1)}-${(nextConn++).toString(36)}`;
      const conn = new NatsConn(cid, remote, address, link, maxBytes);
      conns.set(cid, conn);
      try {
        await c.request(remote, enc.encode(header('o', cid, subject)), { timeout: connectTimeout });
      } catch (err) {
        conns.delete(cid);
        conn.abort();
        const code = (err as NatsError).code;
        if (code === ErrorCode.NoResponders) {
          presence?.gone(remote);
          throw new TroupeError('NODE_DOWN', `nobody serves ${address} (NATS: no responders)`);
        }
        if (code === ErrorCode.Timeout)
          throw new TroupeError('TIMEOUT', `no answer from ${address} in ${connectTimeout} ms`);
        throw new TroupeError(
          'TRANSPORT_CLOSED',
          `cannot dial ${address}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      return conn;
    },
    async listen(cb) {
      onConnection = cb;
      await start();
      return [`nats:${subject}`];
    },
    async close() {
      if (closed) return;
      closed = true;
      if (probeTimer) clearInterval(probeTimer);
      for (const conn of [...conns.values()]) conn.close();
      await discovery.stop();
      await registryBackend?.stop();
      if (!ncPromise) return;
      const c = await ncPromise.catch(() => undefined);
      if (!c) return;
      sub?.unsubscribe();
      if (!options.connection) await c.drain().catch(() => c.close());
    },
  };
}

interface ConnHost {
  send(conn: NatsConn, frame: string): void;
  /** Forget the connection; tell the peer `reason` unless undefined. */
  close(conn: NatsConn, reason: string | undefined): void;
}

/** One virtual connection between two node subjects. */
class NatsConn extends BaseConnection {
  nextOut = 0;
  /** When a message last arrived on it (Date.now()), for the liveness probe. */
  lastIn = Date.now();
  probing = false;
  #nextIn = 0;
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #limit: number;

  constructor(
    readonly id: string,
    readonly remote: string,
    readonly label: string,
    readonly host: ConnHost,
    readonly maxBytes: number,
  ) {
    super();
    this.#limit = maxBytes;
  }

  get bufferedAmount(): number {
    return 0;
  }

  send(frame: string): void {
    if (this.closed) return;
    this.host.send(this, frame);
  }

  close(): void {
    this.finish('closed by this side', () => this.host.close(this, 'closed by peer'));
  }

  /** The dial failed: forget it quietly. */
  abort(): void {
    this.finish('dial failed');
  }

  limitFrameBytes(maxBytes: number | undefined): void {
    this.#limit = maxBytes === undefined ? this.maxBytes : Math.min(maxBytes, this.maxBytes);
  }

  remoteClosed(reason: string): void {
    this.finish(reason.slice(0, 200), () => this.host.close(this, undefined));
  }

  receive(last: boolean, seq: number, body: Uint8Array): void {
    if (this.closed) return;
    this.lastIn = Date.now();
    if (seq !== this.#nextIn) {
      this.#fail(`frames lost in NATS (expected ${this.#nextIn}, got ${seq})`);
      return;
    }
    this.#nextIn++;
    this.#partBytes += body.length;
    if (this.#partBytes > this.#limit) {
      this.#fail(`FRAME_TOO_LARGE: a frame over ${this.#limit} bytes`);
      return;
    }
    if (!last) {
      this.#parts.push(body.slice());
      return;
    }
    let frame: string;
    if (this.#parts.length === 0) frame = dec.decode(body);
    else {
      const all = new Uint8Array(this.#partBytes);
      let off = 0;
      for (const p of this.#parts) {
        all.set(p, off);
        off += p.length;
      }
      all.set(body, off);
      frame = dec.decode(all);
    }
    this.#parts = [];
    this.#partBytes = 0;
    if (!this.deliver(frame))
      this.#fail('PROTOCOL_ERROR: too many frames before the link was attached');
  }

  /** Close it because the peer is gone (no message to it: nobody would read it). */
  fail(reason: string): void {
    this.finish(reason, () => this.host.close(this, undefined));
  }

  #fail(reason: string): void {
    this.finish(reason, () => this.host.close(this, reason));
  }
}

/** The discovery over the shared subject: announce, hear, answer. */
function natsDiscovery(
  start: () => Promise<NatsConnection>,
  own: string,
  shared: string,
  interval: number,
  setHandler: (fn: (from: string, body: Uint8Array, direct: boolean) => void) => void,
  sendDirect: (to: string, body: Uint8Array) => void,
): Discovery {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let sub: Subscription | undefined;
  let stopped = false;
  return {
    name: 'nats',
    async start(node: Node, found) {
      const nc = await start();
      const body = (): Uint8Array =>
        enc.encode(
          JSON.stringify({ n: node.id, a: node.addresses.filter((a) => a.startsWith('nats:')) }),
        );
      const hear = (from: string, data: Uint8Array, direct: boolean): void => {
        if (stopped || node.isShutdown) return;
        let m: { n?: unknown; a?: unknown };
        try {
          m = JSON.parse(dec.decode(data)) as typeof m;
        } catch {
          return;
        }
        if (typeof m.n !== 'string' || m.n === node.id || !Array.isArray(m.a)) return;
        const addrs = m.a
          .filter((a): a is string => typeof a === 'string' && a.length < 300)
          .slice(0, 8);
        if (node.peers().includes(m.n)) return;
        // One side dials: the lower id. The other answers directly so the lower one learns of it.
        if (node.id < m.n) found(m.n, addrs);
        else if (!direct && validSubject(from) && node.addresses.length) sendDirect(from, body());
      };
      setHandler(hear);
      sub = nc.subscribe(shared, {
        callback: (err, msg) => !err && msg.reply !== own && hear(msg.reply ?? '', msg.data, false),
      });
      const announce = (): void => {
        if (stopped || node.isShutdown) return;
        // Not listening yet: look again soon (node.listen() usually follows createNode).
        if (!node.addresses.some((a) => a.startsWith('nats:'))) {
          timer = setTimeout(announce, 25);
          return;
        }
        try {
          nc.publish(shared, body(), { reply: own });
        } catch {
          /* closed */
        }
        timer = setTimeout(announce, interval * (0.8 + Math.random() * 0.4));
      };
      // node.listen() may come right after createNode: announce once it has, then periodically.
      timer = setTimeout(announce, 20);
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      sub?.unsubscribe();
    },
  };
}

function header(kind: string, cid: string, arg: string): string {
  return `${kind} ${cid} ${arg}\n`;
}

function randomToken(): string {
  const b = new Uint8Array(8);
  globalThis.crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * troupe/broadcast-channel — links and discovery between the contexts of one origin (tabs,
 * iframes, dedicated and shared Web Workers) over `BroadcastChannel`, with no server and no
 * WebRTC (Web Workers have none). Also works in Node ≥ 18 between the `worker_threads` of one
 * process. Browser-safe: nothing here touches Node or the DOM at load time.
 *
 * - {@link createBroadcastChannelTransport}: address `bc://<id>`. `listen()` subscribes to the
 *   inbox channel `troupe:bc:<id>`; `connect('bc://<peer>')` opens a private pair channel
 *   (`troupe:bc:<a>:<b>:<nonce>`), announces it to the peer's inbox and waits for the peer to
 *   join it; both ends then use it as a `Connection`.
 * - {@link broadcastDiscovery}: every node announces `{ cluster, nodeId, addresses }` on a shared
 *   channel (`troupe:discovery`) and dials the nodes it hears.
 *
 * Security: a BroadcastChannel only reaches contexts of the same origin, which run the same
 * site's code, so announcements carry no MAC. Nothing is trusted on that account: every link
 * still runs core's handshake, which proves the cluster secret; a context with another secret is
 * heard but never linked.
 *
 * @example
 * const name = `tab-${crypto.randomUUID()}`;
 * const node = createNode({
 *   name, secret,
 *   transports: [createBroadcastChannelTransport({ id: name })],
 *   discovery: broadcastDiscovery({ cluster: 'app' }),
 * });
 * await node.listen(); // other tabs and workers of this origin appear in node.peers()
 */
import {
  TroupeError,
  type Connection,
  type Discovery,
  type Node,
  type Transport,
} from '../core/index.ts';
import { PostedConnection } from './base-connection.ts';

/** The part of `BroadcastChannel` used here (the DOM's, or Node's global one). */
interface Channel {
  readonly name: string;
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  /** Node only: do not keep the process alive for this channel. */
  unref?(): void;
}

function openChannel(name: string): Channel {
  const BC = (globalThis as { BroadcastChannel?: new (name: string) => Channel }).BroadcastChannel;
  if (typeof BC !== 'function')
    throw new TroupeError('TRANSPORT_CLOSED', 'BroadcastChannel is not available in this context');
  const ch = new BC(name);
  ch.unref?.();
  return ch;
}

function nonce(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID
    ? c.randomUUID().replace(/-/g, '')
    : `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
}

const PREFIX = 'troupe:bc:';
/** Longest id accepted (the id is part of channel names). */
const MAX_ID = 200;
/** Most nodes a discovery remembers having heard (to answer each newcomer once). */
const MAX_HEARD = 10_000;

/** Messages on a pair channel besides frames (plain strings). */
type PairControl =
  | { troupe: 'ready' }
  | { troupe: 'frames'; frames: string[] }
  | { troupe: 'close'; reason?: string };
/** Messages on an inbox channel. */
type InboxMessage = { troupe: 'bc-open'; from: string; channel: string };

/** Options of {@link createBroadcastChannelTransport}. */
export interface BroadcastChannelTransportOptions {
  /**
   * This context's id, which its address `bc://<id>` names. Give the node's name, so the address
   * is `bc://<nodeId>`. Must be unique among the origin's contexts. @default a random id
   */
  id?: string;
  /** Give up on a dial when the peer has not joined the pair channel within this many ms. @default 10000 */
  connectTimeout?: number;
  /**
   * In a page: post a close message on every open connection when the page is hidden for good
   * (`pagehide`), so peers see it leave at once rather than at their heartbeat timeout. @default true
   */
  closeOnUnload?: boolean;
}

/** The BroadcastChannel transport, plus its id. */
export interface BroadcastChannelTransport extends Transport {
  /** The id in this transport's address `bc://<id>`. */
  readonly id: string;
}

/**
 * A transport over `BroadcastChannel` between contexts of one origin. Addresses: `bc://<id>`.
 * Closing a page posts a close message on its connections where the host lets it (`pagehide`);
 * a worker terminated or a tab killed without notice is caught by core's heartbeat timeout.
 */
export function createBroadcastChannelTransport(
  options: BroadcastChannelTransportOptions = {},
): BroadcastChannelTransport {
  const id = options.id ?? `bc-${nonce().slice(0, 16)}`;
  if (!id || id.length > MAX_ID || id.includes(':'))
    throw new TypeError(
      `bad BroadcastChannel transport id ${JSON.stringify(id)} (1-${MAX_ID} chars, no ':')`,
    );
  const connectTimeout = options.connectTimeout ?? 10_000;
  const open = new Set<PairConnection>();
  let inbox: Channel | undefined;
  let closed = false;

  const onUnload = (): void => {
    for (const c of [...open]) c.close();
  };
  const g = globalThis as {
    addEventListener?: (t: string, f: () => void) => void;
    removeEventListener?: (t: string, f: () => void) => void;
    document?: unknown;
  };
  const watchUnload =
    options.closeOnUnload !== false &&
    typeof g.document === 'object' &&
    typeof g.addEventListener === 'function';
  if (watchUnload) g.addEventListener!('pagehide', onUnload);

  const track = (c: PairConnection): PairConnection => {
    open.add(c);
    c.whenClosed(() => open.delete(c));
    return c;
  };

  return {
    name: 'broadcast-channel',
    id,

    canConnect: (address) => address.startsWith('bc://') && address.length > 5,

    async connect(address) {
      if (closed)
        throw new TroupeError('TRANSPORT_CLOSED', 'the BroadcastChannel transport is closed');
      const peer = address.slice('bc://'.length);
      if (!peer || peer.length > MAX_ID || peer.includes(':'))
        throw new TroupeError('TRANSPORT_CLOSED', `not a bc:// address: ${address}`);
      const name = `${PREFIX}${id}:${peer}:${nonce()}`;
      const conn = track(new PairConnection(openChannel(name), address, false));
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        // The peer's inbox: post the pair channel's name, then let go (a channel object is cheap).
        const peerInbox = openChannel(`${PREFIX}${peer}`);
        try {
          peerInbox.postMessage({
            troupe: 'bc-open',
            from: id,
            channel: name,
          } satisfies InboxMessage);
        } finally {
          peerInbox.close();
        }
        await Promise.race([
          conn.ready,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  new TroupeError(
                    'TRANSPORT_CLOSED',
                    `${address} did not answer within ${connectTimeout} ms (nobody listens there?)`,
                  ),
                ),
              connectTimeout,
            );
          }),
        ]);
      } catch (err) {
        conn.close();
        throw err;
      } finally {
        clearTimeout(timer);
      }
      return conn;
    },

    async listen(onConnection: (conn: Connection) => void) {
      if (closed)
        throw new TroupeError('TRANSPORT_CLOSED', 'the BroadcastChannel transport is closed');
      if (!inbox) {
        inbox = openChannel(`${PREFIX}${id}`);
        inbox.onmessage = (e) => {
          const m = e.data as Partial<InboxMessage> | null;
          if (closed || typeof m !== 'object' || m === null || m.troupe !== 'bc-open') return;
          if (typeof m.from !== 'string' || typeof m.channel !== 'string') return;
          // Only pair channels dialed at this id: `troupe:bc:<from>:<id>:<nonce>`.
          if (!m.channel.startsWith(`${PREFIX}${m.from}:${id}:`) || m.channel.length > 3 * MAX_ID)
            return;
          const conn = track(new PairConnection(openChannel(m.channel), `bc://${m.from}`, true));
          onConnection(conn);
        };
      }
      return [`bc://${id}`];
    },

    async close() {
      if (closed) return;
      closed = true;
      if (watchUnload) g.removeEventListener?.('pagehide', onUnload);
      inbox?.close();
      inbox = undefined;
      for (const c of [...open]) c.close();
    },
  };
}

/** One end of a pair channel. */
class PairConnection extends PostedConnection {
  readonly label: string;
  /** Resolves when the other end is on the channel (the dialer waits for it). */
  readonly ready: Promise<void>;
  #ch: Channel;
  #resolveReady!: () => void;
  #rejectReady!: (e: Error) => void;
  #onClosed: (() => void)[] = [];

  constructor(ch: Channel, label: string, accepting: boolean) {
    super();
    this.#ch = ch;
    this.label = label;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {});
    ch.onmessage = (e) => this.#receive(e.data);
    if (accepting) {
      // The dialer is on the channel already (it created it): tell it we are too.
      this.post({ troupe: 'ready' });
      this.#setReady();
    }
  }

  whenClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.#onClosed.push(fn);
  }

  close(): void {
    if (this.closed) return;
    if (this.peerReady) this.flush();
    this.post({ troupe: 'close' });
    this.#shut('closed by this side');
  }

  #setReady(): void {
    if (this.markPeerReady()) this.#resolveReady();
  }

  #receive(data: unknown): void {
    const msg = this.receivePosted(data) as PairControl | undefined;
    if (msg?.troupe === 'ready') return this.#setReady();
    if (msg?.troupe === 'close') return this.#shut('closed by peer');
  }

  protected fail(reason: string): void {
    this.post({ troupe: 'close', reason });
    this.#shut(reason);
  }

  #shut(reason: string): void {
    this.finish(reason, () => {
      this.dropQueued();
      this.#ch.onmessage = null;
      this.#ch.close();
      if (!this.peerReady)
        this.#rejectReady(
          new TroupeError('TRANSPORT_CLOSED', `${this.label} closed before it opened: ${reason}`),
        );
      for (const fn of this.#onClosed.splice(0)) fn();
    });
  }

  protected post(message: unknown): void {
    try {
      this.#ch.postMessage(message);
    } catch (err) {
      if (!this.closed) queueMicrotask(() => this.#shut(`cannot post: ${String(err)}`));
    }
  }
}

/** Options of {@link broadcastDiscovery}. */
export interface BroadcastDiscoveryOptions {
  /** The shared channel announcements go on. @default 'troupe:discovery' */
  channel?: string;
  /** Only nodes announcing the same cluster name are dialed. @default 'troupe' */
  cluster?: string;
  /** Announce every this many ms. @default 1000 */
  interval?: number;
}

/** Announcement on the discovery channel. */
type Announce = {
  troupe: 'bc-hello' | 'bc-bye';
  v: 1;
  cluster: string;
  nodeId: string;
  addresses: string[];
};

/**
 * Discovery between the contexts of one origin: announces `{ cluster, nodeId, addresses }` on a
 * shared BroadcastChannel every `interval` ms (and at once when its addresses change or a
 * newcomer appears), and reports the other nodes of the same cluster to the node, which dials
 * them. No MAC: the channel never leaves the origin, and the link handshake proves the secret.
 * A node whose addresses no transport of the listener understands is reported but not dialed.
 */
export function broadcastDiscovery(options: BroadcastDiscoveryOptions = {}): Discovery {
  const channelName = options.channel ?? 'troupe:discovery';
  const cluster = options.cluster ?? 'troupe';
  const interval = options.interval ?? 1000;
  let ch: Channel | undefined;
  let node: Node | undefined;
  let found: ((id: string, addrs: string[]) => void) | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  let watch: ReturnType<typeof setInterval> | undefined;
  let lastAnnounced = '';
  const heard = new Set<string>();
  let stopped = false;

  const announce = (t: 'bc-hello' | 'bc-bye'): void => {
    if (!ch || !node || !node.addresses.length) return;
    lastAnnounced = node.addresses.join(' ');
    try {
      ch.postMessage({
        troupe: t,
        v: 1,
        cluster,
        nodeId: node.id,
        addresses: node.addresses,
      } satisfies Announce);
    } catch {
      // the next announcement retries
    }
  };

  const onMessage = (data: unknown): void => {
    const m = data as Partial<Announce> | null;
    if (
      !node ||
      typeof m !== 'object' ||
      m === null ||
      (m.troupe !== 'bc-hello' && m.troupe !== 'bc-bye') ||
      m.v !== 1
    )
      return;
    if (
      m.cluster !== cluster ||
      typeof m.nodeId !== 'string' ||
      m.nodeId === node.id ||
      m.nodeId.length > MAX_ID
    )
      return;
    if (m.troupe === 'bc-bye') {
      heard.delete(m.nodeId);
      return;
    }
    if (
      !Array.isArray(m.addresses) ||
      m.addresses.length > 16 ||
      !m.addresses.every((a) => typeof a === 'string' && a.length <= 400)
    )
      return;
    if (!heard.has(m.nodeId)) {
      if (heard.size >= MAX_HEARD) heard.clear(); // only costs a few extra announcements
      heard.add(m.nodeId);
      announce('bc-hello'); // the newcomer learns of us at once
    }
    if (m.addresses.length && !node.peers().includes(m.nodeId)) found?.(m.nodeId, m.addresses);
  };

  return {
    name: 'broadcast-channel',
    start(n, f) {
      if (ch || stopped) return;
      node = n;
      found = f;
      ch = openChannel(channelName);
      ch.onmessage = (e) => onMessage(e.data);
      announce('bc-hello');
      timer = setInterval(() => announce('bc-hello'), interval);
      watch = setInterval(() => {
        if (node && node.addresses.join(' ') !== lastAnnounced) announce('bc-hello');
      }, 100);
      (timer as { unref?: () => void }).unref?.();
      (watch as { unref?: () => void }).unref?.();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      clearInterval(watch);
      if (lastAnnounced) announce('bc-bye');
      ch?.close();
      ch = undefined;
    },
  };
}

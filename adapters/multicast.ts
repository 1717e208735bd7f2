/**
 * troupe/multicast — zero-configuration discovery over UDP multicast (Node `dgram`), like Cloud
 * Haskell's SimpleLocalnet: every node announces `{ cluster, node id, listen addresses }` to a
 * multicast group, and dials the nodes it hears. Announcements are authenticated with an HMAC
 * keyed by the cluster secret and carry a timestamp and a nonce: a node with another secret (or
 * another cluster name) is ignored, never dialed, and replayed or stale announcements are dropped.
 * The link itself is still authenticated by core's handshake.
 *
 * @example
 * const node = createNode({ secret, transports: [createTcpTransport()], discovery: multicast({ cluster: 'jobs' }) });
 * await node.listen(); // announced from now on; peers appear in node.peers()
 */
import dgram from 'node:dgram';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Discovery, Node } from '../core/index.ts';

/** Options of {@link multicast}. */
export interface MulticastOptions {
  /** Multicast group (IPv4). @default '239.255.70.77' */
  group?: string;
  /** UDP port shared by every node of the group. @default 47077 */
  port?: number;
  /**
   * Address of the local interface to send and receive on. The default keeps discovery on this
   * machine; give a LAN address (and listen on one) to find nodes on other machines.
   * @default '127.0.0.1'
   */
  interface?: string;
  /** Only nodes announcing the same cluster name are dialed. @default 'troupe' */
  cluster?: string;
  /** Key for the announcements' HMAC. @default the node's secret */
  secret?: string;
  /** Announce every this many ms (with ±20% jitter). @default 1000 */
  interval?: number;
  /** Drop announcements older (or further in the future) than this many ms. @default 10000 */
  maxAge?: number;
  /** Forget a node not heard for this many ms. @default 5 × interval */
  expireAfter?: number;
  /** Multicast TTL. @default 0 on 127.0.0.1 (this host only), else 1 (this LAN segment) */
  ttl?: number;
  /** Called for each announcement dropped (bad MAC, other cluster, replay, stale, malformed). */
  onIgnored?: (reason: IgnoredReason, from: string) => void;
}

/** Why an announcement was dropped. */
export type IgnoredReason =
  | 'malformed'
  | 'bad-mac'
  | 'other-cluster'
  | 'stale'
  | 'replay'
  | 'name-clash';

/** A node this discovery has heard. */
export interface KnownNode {
  id: string;
  addresses: string[];
  /** `Date.now()` of its last valid announcement. */
  lastSeen: number;
}

/** What {@link multicast} returns: a {@link Discovery} plus what it has seen. */
export interface MulticastDiscovery extends Discovery {
  /** Nodes heard recently (not expired, not said goodbye), by id. */
  known(): KnownNode[];
  /** Counters: announcements sent, accepted, and dropped by reason. */
  stats(): { sent: number; accepted: number; ignored: Record<IgnoredReason, number> };
}

const VERSION = 1;
/** Largest datagram accepted (announcements are a few hundred bytes). */
const MAX_DATAGRAM = 8192;
/** Most nonces remembered for replay detection (bounds memory under a flood). */
const MAX_NONCES = 20_000;

const Announcement = z.object({
  v: z.literal(VERSION),
  t: z.enum(['hello', 'bye']),
  c: z.string().max(200),
  id: z.string().min(1).max(200),
  inc: z.string().max(64),
  a: z.array(z.string().max(300)).max(16),
  ts: z.number().int(),
  n: z.string().regex(/^[0-9a-f]{32}$/),
  mac: z.string().regex(/^[0-9a-f]{64}$/),
});
type Announcement = z.infer<typeof Announcement>;

/** The text the MAC covers: every field but the MAC, in a fixed order. */
function signedText(a: Omit<Announcement, 'mac'>): string {
  return JSON.stringify([a.v, a.t, a.c, a.id, a.inc, a.a, a.ts, a.n]);
}

/**
 * Discovery over UDP multicast. Pass it to `createNode({ discovery: multicast({ … }) })`.
 * Socket settings: `reuseAddr` (several nodes per host), bound to the group address, membership
 * and sending on `interface` only, loopback on, TTL 0 on 127.0.0.1.
 */
export function multicast(options: MulticastOptions = {}): MulticastDiscovery {
  const group = options.group ?? '239.255.70.77';
  const port = options.port ?? 47077;
  const iface = options.interface ?? '127.0.0.1';
  const cluster = options.cluster ?? 'troupe';
  const interval = options.interval ?? 1000;
  const maxAge = options.maxAge ?? 10_000;
  const expireAfter = options.expireAfter ?? 5 * interval;
  const ttl = options.ttl ?? (iface.startsWith('127.') ? 0 : 1);

  let socket: dgram.Socket | undefined;
  let node: Node | undefined;
  let key: Buffer | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watch: ReturnType<typeof setInterval> | undefined;
  let lastAnnounced = '';
  let lastReply = 0;
  let stopped = false;
  const known = new Map<string, KnownNode>();
  /** nonce → expiry (ms), in insertion order, so the oldest are purged first. */
  const nonces = new Map<string, number>();
  const counters = {
    sent: 0,
    accepted: 0,
    ignored: {
      malformed: 0,
      'bad-mac': 0,
      'other-cluster': 0,
      stale: 0,
      replay: 0,
      'name-clash': 0,
    } as Record<IgnoredReason, number>,
  };

  const ignore = (reason: IgnoredReason, from: string): void => {
    counters.ignored[reason]++;
    options.onIgnored?.(reason, from);
  };

  const mac = (text: string): string => createHmac('sha256', key!).update(text).digest('hex');

  const send = (type: 'hello' | 'bye'): Promise<void> => {
    const s = socket;
    const n = node;
    if (!s || !n) return Promise.resolve();
    const body = {
      v: VERSION,
      t: type,
      c: cluster,
      id: n.id,
      inc: n.incarnation,
      a: n.addresses,
      ts: Date.now(),
      n: randomBytes(16).toString('hex'),
    } as const;
    const packet = JSON.stringify({ ...body, mac: mac(signedText(body)) });
    return new Promise((resolve) => {
      s.send(packet, port, group, () => {
        counters.sent++;
        resolve();
      });
    });
  };

  /** Announce now if our addresses changed since the last announcement (for example after listen()). */
  const announceIfChanged = (): void => {
    const addrs = node ? node.addresses.join(' ') : '';
    if (addrs && addrs !== lastAnnounced) {
      lastAnnounced = addrs;
      void send('hello');
    }
  };

  const schedule = (): void => {
    if (stopped) return;
    const delay = interval * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      // A node that does not listen is not announced (nobody could dial it), but still listens.
      if (node && node.addresses.length) {
        lastAnnounced = node.addresses.join(' ');
        void send('hello');
      }
      expire();
      schedule();
    }, delay);
    timer.unref?.();
  };

  const expire = (): void => {
    const now = Date.now();
    for (const [id, k] of known) if (now - k.lastSeen > expireAfter) known.delete(id);
    for (const [nonce, until] of nonces) {
      if (until > now) break;
      nonces.delete(nonce);
    }
  };

  const onMessage = (buf: Buffer, rinfo: dgram.RemoteInfo): void => {
    const from = `${rinfo.address}:${rinfo.port}`;
    if (!node || buf.length > MAX_DATAGRAM) return ignore('malformed', from);
    let parsed: Announcement;
    try {
      const r = Announcement.safeParse(JSON.parse(buf.toString('utf8')));
      if (!r.success) return ignore('malformed', from);
      parsed = r.data;
    } catch {
      return ignore('malformed', from);
    }
    const { mac: got, ...body } = parsed;
    const want = Buffer.from(mac(signedText(body)), 'hex');
    if (!timingSafeEqual(want, Buffer.from(got, 'hex'))) return ignore('bad-mac', from);
    if (body.c !== cluster) return ignore('other-cluster', from);
    if (body.id === node.id) {
      // Our own datagram (loopback is on), or another node using our name.
      if (body.inc !== node.incarnation) ignore('name-clash', from);
      return;
    }
    const now = Date.now();
    if (Math.abs(now - body.ts) > maxAge) return ignore('stale', from);
    if (nonces.has(body.n)) return ignore('replay', from);
    if (nonces.size >= MAX_NONCES) nonces.delete(nonces.keys().next().value!);
    nonces.set(body.n, now + 2 * maxAge);
    counters.accepted++;
    if (body.t === 'bye') {
      known.delete(body.id);
      return;
    }
    const isNew = !known.has(body.id);
    known.set(body.id, { id: body.id, addresses: body.a, lastSeen: now });
    // A newcomer learns of us at once instead of after a full interval (at most 5 replies/s).
    if (isNew && node.addresses.length && now - lastReply > 200) {
      lastReply = now;
      void send('hello');
    }
    if (body.a.length && !node.peers().includes(body.id)) foundFn?.(body.id, body.a);
  };

  let foundFn: ((nodeId: string, addresses: string[]) => void) | undefined;

  return {
    name: 'multicast',

    start(n, found) {
      if (socket || stopped) return;
      node = n;
      foundFn = found;
      const secret = options.secret ?? n.options.secret;
      // A key of its own, so a discovery MAC is never mistaken for a handshake proof.
      key = createHmac('sha256', secret).update('troupe-discovery-v1').digest();
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      socket = s;
      s.on('message', onMessage);
      return new Promise<void>((resolve, reject) => {
        const fail = (err: Error): void => {
          socket = undefined;
          s.close();
          reject(err);
        };
        s.once('error', fail);
        s.bind(port, group, () => {
          try {
            s.setMulticastInterface(iface);
            s.addMembership(group, iface);
            s.setMulticastLoopback(true);
            s.setMulticastTTL(ttl);
          } catch (err) {
            fail(err as Error);
            return;
          }
          s.off('error', fail);
          s.on('error', () => {
            /* a failed send is retried by the next announcement */
          });
          if (stopped) {
            s.close();
            socket = undefined;
            resolve();
            return;
          }
          s.unref();
          announceIfChanged();
          watch = setInterval(announceIfChanged, 100);
          watch.unref?.();
          schedule();
          resolve();
        });
      });
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      if (watch) clearInterval(watch);
      const s = socket;
      if (!s) return;
      // Say goodbye so listeners forget this node at once (links notice on their own anyway).
      if (lastAnnounced) await send('bye').catch(() => {});
      socket = undefined;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },

    known: () => {
      expire();
      return [...known.values()].map((k) => ({ ...k, addresses: [...k.addresses] }));
    },

    stats: () => ({
      sent: counters.sent,
      accepted: counters.accepted,
      ignored: { ...counters.ignored },
    }),
  };
}

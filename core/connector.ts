import { type CloseReason, isRedialed } from './close-reason.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import type { Link } from './link.ts';
import type { Connection, Transport } from './transport.ts';
import { DialingConnection } from './dialing-connection.ts';
import { DialPacer } from './dial-pacer.ts';
import type { Discovery } from './discovery.ts';
import type { Clock } from './clock.ts';
import type { Emitter } from './events.ts';
import type { NodeEvents, ResolvedOptions } from './node-options.ts';

/** What the connector needs from its node's runtime. @internal */
export interface ConnectorHost {
  readonly id: string;
  readonly clock: Clock;
  readonly options: ResolvedOptions;
  readonly events: Emitter<NodeEvents>;
  readonly isShutdown: boolean;
  /** The public node, handed to discoveries. */
  readonly node: Parameters<Discovery['start']>[0];
}

/** What the connector needs from the router it makes links for. @internal */
export interface ConnectorLinks {
  attach(conn: Connection, initiator: boolean, options?: { secret?: string }): Promise<string>;
  attachLink(
    conn: Connection,
    initiator: boolean,
    secret?: string,
  ): { link: Link; up: Promise<string> };
  nodes(): string[];
  hasDirect(node: string): boolean;
  addressesOf(node: string): string[];
  learnAddresses(node: string, addrs: string[]): void;
  /** Lazy links: `up` when a lazy discovery reports member `node`, `down` when it left. */
  readonly members: { up(node: string): void; down(node: string): void };
}

/** Mean period of the mesh repair pass, in ms. */
const REPAIR_INTERVAL = 2000;
/**
 * How a node makes its links: listening on its transports, dialing addresses, redialing lost
 * links (seeds forever, other dialed links for `reconnectWindow`), dialing nodes it hears of
 * (`autoConnect`), and running its discoveries. The links it makes are its router's.
 * @internal
 */
export class Connector {
  /** The addresses this node listens on. */
  readonly listenAddrs: string[] = [];

  readonly #node: ConnectorHost;
  readonly #router: ConnectorLinks;
  readonly #transports: Transport[];
  readonly #discoveries: Discovery[];
  #discoveriesStarted = new Set<Discovery>();
  /** Addresses redialed forever. */
  #seeds = new Set<string>();
  /** Addresses with a dial in flight or a redial scheduled. */
  #dialing = new Set<string>();
  /** The address each dialed link was made to. */
  #linkAddress = new WeakMap<Link, string>();
  /** Backoff after failed dials and the cap on automatic dials in flight. */
  readonly #pacer = new DialPacer();
  /** The mesh repair timer (periodic re-dial of reachable nodes without a direct link). */
  #repairTimer: unknown;
  /** Routed nodes whose route died, being dialed directly before they are declared down. */
  #rescues = new Map<string, { timer: unknown; fail: () => void }>();
  /** Members reported by a lazy discovery (Discovery.lazy): dialed on first use only. */
  #members = new Set<string>();
  /** Links to members being dialed on first use, until their handshake ends. */
  #lazyLinks = new Map<string, Link>();

  constructor(
    node: ConnectorHost,
    router: ConnectorLinks,
    transports: Transport[],
    discoveries: Discovery[],
  ) {
    this.#node = node;
    this.#router = router;
    this.#transports = transports;
    this.#discoveries = discoveries;
    // Started after createNode returns, so a listener added right after it sees a failure.
    if (discoveries.length) queueMicrotask(() => this.#startDiscoveries());
  }

  /** See {@link Node.listen}. */
  async listen(): Promise<string[]> {
    for (const t of this.#transports) {
      if (!t.listen) continue;
      const addrs = await t.listen((conn) => {
        this.#router.attach(conn, false, { secret: t.secret }).catch(() => {
          /* reported as a protocolError / linkDown event */
        });
      });
      this.listenAddrs.push(...addrs);
    }
    return [...this.listenAddrs];
  }

  /** See {@link Node.connect}. */
  async connect(address: string): Promise<string> {
    if (this.#node.isShutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
    const t = this.#transports.find((x) => x.canConnect(address));
    if (!t) throw new TroupeError('TRANSPORT_CLOSED', `no transport can dial "${address}"`);
    let conn: Connection;
    try {
      conn = await t.connect(address);
    } catch (err) {
      // A transport that knows the node is gone (NATS: nobody serves its subject) says so.
      if (err instanceof TroupeError && err.code === 'NODE_DOWN') throw err;
      throw new TroupeError(
        'TRANSPORT_CLOSED',
        `cannot connect to ${address}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const link = this.#router.attachLink(conn, true, t.secret);
    this.#linkAddress.set(link.link, address);
    return link.up;
  }

  /** See {@link Node.join}. */
  join(address: string): Promise<string> {
    this.#seeds.add(address);
    return new Promise((resolve, reject) => {
      this.#redial(address, Infinity, resolve, reject);
    });
  }

  #redial(
    address: string,
    deadline: number,
    onUp?: (peer: string) => void,
    onGiveUp?: (e: unknown) => void,
  ): void {
    if (this.#dialing.has(address)) return;
    this.#dialing.add(address);
    let attempt = 0;
    const clock = this.#node.clock;
    const tryOnce = (): void => {
      if (this.#node.isShutdown) {
        this.#dialing.delete(address);
        onGiveUp?.(new TroupeError('SHUTDOWN', 'node is shut down'));
        return;
      }
      this.connect(address).then(
        (peer) => {
          this.#dialing.delete(address);
          onUp?.(peer);
        },
        (err: TroupeError) => {
          const permanent = err.code === 'UNAUTHORIZED' || err.code === 'VERSION_MISMATCH';
          if (permanent || clock.now() >= deadline || this.#node.isShutdown) {
            this.#dialing.delete(address);
            onGiveUp?.(err);
            return;
          }
          const delay = Math.min(5000, 100 * 2 ** attempt++) * (0.75 + Math.random() / 2);
          clock.setTimeout(tryOnce, delay);
        },
      );
    };
    tryOnce();
  }

  /** A link to `peer` came up. */
  linkUp(peer: string): void {
    this.#pacer.forget(peer);
    const rescue = this.#rescues.get(peer);
    if (rescue) {
      this.#rescues.delete(peer);
      this.#node.clock.clearTimeout(rescue.timer);
    }
    if (this.#repairTimer === undefined && this.#node.options.autoConnect) this.#scheduleRepair();
  }

  /**
   * Mesh repair: every couple of seconds (with jitter), dial each reachable node this node has
   * no direct link to, at a known address, unless a dial to it failed recently (the wait after a
   * failure doubles, from 1 s up to 15 s, with jitter: DialPacer). A dial that failed once (a handshake
   * timing out under load) is retried even after membership gossip has gone quiet.
   */
  #scheduleRepair(): void {
    const clock = this.#node.clock;
    this.#repairTimer = clock.setTimeout(
      () => {
        this.#repairTimer = undefined;
        if (this.#node.isShutdown) return;
        // In random order: when dials are capped, every node gets its turn.
        const nodes = this.#router.nodes();
        for (let i = nodes.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1));
          [nodes[i], nodes[j]] = [nodes[j]!, nodes[i]!];
        }
        for (const n of nodes) this.#dialKnown(n);
        this.#scheduleRepair();
      },
      REPAIR_INTERVAL * (0.75 + Math.random() / 2),
    );
  }

  /**
   * The only route to `node` (through another node) died. Before it is declared down, dial it
   * directly (if an address of it is known): a link within the heartbeat timeout keeps it up
   * (its session with this node is still settled, since envelopes on the dead route may be lost).
   * Returns false when no dial can be tried; else `fail` runs if no link came up in time.
   */
  rescue(node: string, fail: () => void): boolean {
    if (this.#node.isShutdown || !this.#node.options.autoConnect || this.#rescues.has(node))
      return this.#rescues.has(node);
    const addr = this.#router
      .addressesOf(node)
      .find((a) => this.#transports.some((t) => t.canConnect(a)));
    if (!addr) return false;
    const timer = this.#node.clock.setTimeout(() => {
      if (this.#rescues.get(node)?.timer !== timer) return;
      this.#rescues.delete(node);
      fail();
    }, this.#node.options.heartbeatTimeout);
    this.#rescues.set(node, { timer, fail });
    this.#pacer.forget(node);
    this.#dialKnown(node, true);
    return true;
  }

  /** The direct link `link` went down for `reason`: redial it if this node dialed it. */
  linkDown(link: Link, reason: CloseReason): void {
    const address = this.#linkAddress.get(link);
    if (address && isRedialed(reason) && !this.#node.isShutdown) {
      this.#redial(
        address,
        this.#seeds.has(address)
          ? Infinity
          : this.#node.clock.now() + this.#node.options.reconnectWindow,
      );
    }
  }

  /** Dial `node` directly if its addresses are known and a transport can reach them. */
  autoDial(node: string): void {
    if (!this.#node.options.autoConnect) return;
    this.#dialKnown(node);
  }

  /** Whether a lazy discovery reports `node` as a member (it is dialed on first use only). */
  isMember(node: string): boolean {
    return this.#members.has(node);
  }

  /**
   * The link to member `node` for an envelope about to be sent to it: the one being dialed, or a
   * new dial (on first use). Its handshake is not done: the router holds what it sends until the
   * link is up. Undefined when no transport can reach a known address of it.
   */
  lazyLink(node: string): Link | undefined {
    const dialing = this.#lazyLinks.get(node);
    if (dialing) return dialing;
    if (this.#node.isShutdown) return undefined;
    const addr = this.#router
      .addressesOf(node)
      .find((a) => this.#transports.some((t) => t.canConnect(a)));
    const t = addr && this.#transports.find((x) => x.canConnect(addr));
    if (!addr || !t) return undefined;
    const conn = new DialingConnection(addr, t.connect(addr));
    const { link, up } = this.#router.attachLink(conn, true, t.secret);
    this.#lazyLinks.set(node, link);
    up.then(
      () => this.#lazyLinks.delete(node),
      () => {
        this.#lazyLinks.delete(node);
        // Nobody serves its address (NATS: no responders): the member is gone.
        if (conn.error instanceof TroupeError && conn.error.code === 'NODE_DOWN')
          this.#memberLost(node);
      },
    );
    return link;
  }

  #memberFound(node: string, addrs: string[]): void {
    if (this.#node.isShutdown || node === this.#node.id) return;
    if (addrs.length) this.#router.learnAddresses(node, addrs);
    if (this.#members.has(node)) return;
    this.#members.add(node);
    this.#router.members.up(node);
  }

  #memberLost(node: string): void {
    if (!this.#members.delete(node) || this.#node.isShutdown) return;
    this.#lazyLinks.get(node)?.close({ kind: 'lost', text: 'member left' });
    this.#router.members.down(node);
  }

  /**
   * Dial `node` at a known address unless linked, dialing, or a dial to it failed recently (the
   * wait doubles per failure, with jitter). At most MAX_AUTO_DIALS (dial-pacer.ts) at once unless `urgent` (a
   * rescue, bound by the heartbeat timeout): the others wait for one to end.
   */
  #dialKnown(node: string, urgent = false): void {
    if (this.#node.isShutdown || this.#router.hasDirect(node) || node === this.#node.id) return;
    // A member of a lazy discovery is dialed when something is sent to it, not by gossip/repair.
    if (this.#members.has(node)) return;
    const clock = this.#node.clock;
    if (!this.#pacer.due(node, clock.now(), urgent)) return;
    const addrs = this.#router.addressesOf(node);
    const addr = addrs.find((a) => this.#transports.some((t) => t.canConnect(a)));
    if (!addr || this.#dialing.has(addr) || !this.#pacer.take(node, urgent)) return;
    this.#dialing.add(addr);
    const ended = (): void => {
      this.#dialing.delete(addr);
      for (const next of this.#pacer.release()) {
        if (this.#node.isShutdown || !this.#pacer.turn(next)) break;
        this.#dialKnown(next);
      }
    };
    this.connect(addr).then(ended, (err: TroupeError) => {
      ended();
      this.#pacer.failed(node, clock.now());
      // The direct dial failed (refused, nobody serves the subject): the rescue is over.
      void err;
      const rescue = this.#rescues.get(node);
      if (rescue) {
        this.#rescues.delete(node);
        clock.clearTimeout(rescue.timer);
        rescue.fail();
      }
    });
  }

  #startDiscoveries(): void {
    for (const d of this.#discoveries) {
      if (this.#node.isShutdown) return;
      this.#discoveriesStarted.add(d);
      const report = (err: unknown): void =>
        this.#node.events.emit('discoveryError', {
          discovery: d.name,
          error: toTroupeError(err, 'TRANSPORT_CLOSED'),
        });
      try {
        const started = d.lazy
          ? d.start(
              this.#node.node,
              (node, addrs) => this.#memberFound(node, addrs),
              (node) => this.#memberLost(node),
            )
          : d.start(this.#node.node, (node, addrs) => this.#discovered(node, addrs));
        Promise.resolve(started).catch(report);
      } catch (err) {
        report(err);
      }
    }
  }

  /** A discovery heard of `node` (authenticated by the discovery; the handshake checks again). */
  #discovered(node: string, addrs: string[]): void {
    if (this.#node.isShutdown || node === this.#node.id || this.#router.hasDirect(node)) return;
    if (addrs.length) this.#router.learnAddresses(node, addrs);
    // Discovery dials even with autoConnect off: finding the cluster is what it is for.
    this.#dialKnown(node);
  }

  /** Shutdown (after the links closed): stop the discoveries and close the transports. */
  async close(): Promise<void> {
    if (this.#repairTimer !== undefined) this.#node.clock.clearTimeout(this.#repairTimer);
    this.#repairTimer = undefined;
    for (const r of this.#rescues.values()) this.#node.clock.clearTimeout(r.timer);
    this.#rescues.clear();
    this.#members.clear();
    this.#pacer.clear();
    const stops = [...this.#discoveriesStarted].map(async (d) => {
      try {
        await d.stop();
      } catch (err) {
        this.#node.events.emit('discoveryError', {
          discovery: d.name,
          error: toTroupeError(err, 'TRANSPORT_CLOSED'),
        });
      }
    });
    await Promise.all([...this.#transports.map((t) => t.close().catch(() => {})), ...stops]);
  }
}

import type { Clock } from './clock.ts';
import { TrafficHeaders, writeNodeDown } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import { Forwarder } from './forwarder.ts';
import type { Link } from './link.ts';
import type { SessionBook } from './session.ts';
import type { Registry } from './registry.ts';
import type { Connection, Transport } from './transport.ts';
import type { Discovery } from './discovery.ts';
import type { DeadLetterReason, NodeEvents, ResolvedOptions } from './node-options.ts';
import { Connector, type ConnectorHost } from './connector.ts';
import { Inbound, type InboundRuntime } from './router-inbound.ts';
import { LinkBook, type LinkStat } from './router-links.ts';
import { Outbound, type EmitFailure } from './router-outbound.ts';
import { RouteSwitches } from './route-switches.ts';
import { RouteTable, sendRegistry } from './route-table.ts';
import { MemberLinks } from './router-members.ts';
import { SessionKeeper } from './router-sessions.ts';

export { MAX_NAMES_PER_PEER, MAX_NODES_INTRODUCED_PER_PEER } from './router-inbound.ts';

/** Most routes a node keeps (bounds what hostile refs can add). */
export const MAX_ROUTES = 10_000;

/**
 * What the router needs from its node's runtime: the envelopes for this node's actors, the
 * actor links, replies with errors, dead letters and the end of a session. @internal
 */
export interface RouterHost extends ConnectorHost, InboundRuntime {
  readonly incarnation: string;
  replyError(node: string, callId: number, error: TroupeError): void;
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
  decodePayload(
    payload: string | undefined,
    to: string,
  ): { ok: true; value: unknown } | { ok: false; error: TroupeError };
}

/** What the router shares with its node. */
export interface RouterParts {
  sessions: SessionBook;
  registry: Registry;
  transports: Transport[];
  discoveries: Discovery[];
}

type NodeWatcher = (e: { node: string; up: boolean; reason?: string }) => void;

/**
 * The link layer of a node: its links to peer nodes (handshake, duplicates, loss), the routes to
 * every node it can reach, and the sessions with them. Its parts, each behind an interface it
 * declares: the {@link RouteTable}, {@link Inbound} (incoming frames and envelopes),
 * {@link Outbound} (envelopes out), the {@link Forwarder}, {@link RouteSwitches} and the
 * {@link Connector} (dialing, listening, discoveries). @internal
 */
export class Router {
  /** Listening, dialing, redialing and discoveries. */
  readonly connector: Connector;
  readonly id: string;
  readonly runtime: RouterHost;
  readonly table: RouteTable<Link>;
  readonly sessions: SessionBook;
  readonly registry: Registry;
  readonly events: Emitter<NodeEvents>;
  readonly switches: RouteSwitches<Link>;
  readonly forwarder: Forwarder<Link>;

  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly #inbound: Inbound;
  readonly #out: Outbound<Link>;
  #nodeWatchers = new Map<string, Set<NodeWatcher>>();
  readonly #links: LinkBook;
  /** Lazy links: the members a lazy discovery reports, dialed on first use. */
  readonly members: MemberLinks<Link>;
  readonly #keeper: SessionKeeper<Link> = new SessionKeeper<Link>(this);

  constructor(node: RouterHost, parts: RouterParts) {
    this.runtime = node;
    this.id = node.id;
    this.options = node.options;
    this.clock = node.clock;
    this.events = node.events;
    this.sessions = parts.sessions;
    this.registry = parts.registry;
    const options = node.options;
    const headers = new TrafficHeaders(node.id, MAX_ROUTES);
    const table = (this.table = new RouteTable<Link>(node.id, MAX_ROUTES));
    const route = (n: string) => this.members.route(n);
    const deadLetter = node.deadLetter.bind(node);
    const put = (link: Link, n: string, text: string, droppable: boolean) =>
      this.members.put(link, n, text, droppable);
    this.switches = new RouteSwitches<Link>({
      id: node.id,
      clock: node.clock,
      switchTimeout: options.heartbeatTimeout,
      route,
      rehome: (text, n, link) => headers.rehome(text, n, link),
      routeLost: (n, from) => this.#keeper.routeLost(n, from),
      deadLetter,
    });
    const hold = (n: string, text: string) => this.switches.active && this.switches.hold(n, text);
    this.#out = new Outbound<Link>({
      maxFrameSize: options.maxFrameSize,
      maxLinkQueue: options.maxLinkQueue,
      autoConnect: options.autoConnect,
      headers,
      route,
      autoDial: (n) => this.connector.autoDial(n),
      hold,
      put,
      hasDeadLetterListener: () => this.events.has('deadLetter'),
      deadLetter,
    });
    this.forwarder = new Forwarder<Link>({
      id: node.id,
      clock: node.clock,
      events: node.events,
      hopLimit: options.hopLimit,
      maxDrops: MAX_ROUTES,
      route,
      // A member (lazy links) is reached directly when used, never through another node.
      learnRoute: (n, link) => !this.connector.isMember(n) && table.learn(n, link),
      hold,
      put,
      congested: (link) => this.#out.congested(link),
      replyError: (n, callId, error) => node.replyError(n, callId, error),
      downUnreachable: (n, watcher, mid, target, id) =>
        node.actorLinks.sendDown(n, watcher, mid, target, id, 'noconnection', undefined),
      deadLetter,
    });
    this.members = new MemberLinks<Link>(this);
    this.#inbound = new Inbound(this);
    this.#links = new LinkBook(this);
    this.connector = new Connector(node, this, parts.transports, parts.discoveries);
  }

  // ---------------------------------------------------------------------------------------
  // Links

  /** See {@link Node.attach}. */
  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    return this.#links.attach(conn, initiator, options);
  }

  /** Start a link on `conn`; `up` resolves with the peer's node id once the handshake is done. */
  attachLink(
    conn: Connection,
    initiator: boolean,
    secret?: string,
  ): { link: Link; up: Promise<string> } {
    return this.#links.attachLink(conn, initiator, secret);
  }

  /** A frame arrived on `link`. */
  frame(link: Link, frame: string): void {
    this.#inbound.frame(link, frame);
  }

  /** `link` is gone: forget the registry names it added. */
  linkGone(link: Link): void {
    this.#inbound.linkDown(link);
  }

  /** `link` is now the only link to its peer: the one in use (`current`) died on the peer's side. */
  adopt(link: Link, current: Link): void {
    this.#links.adopt(link, current);
  }

  /** See {@link Node.nodes}. */
  nodes(): string[] {
    return [...this.table.reachable];
  }

  /** See {@link Node.peers}. */
  peers(): string[] {
    return [...this.table.direct.keys()];
  }

  /** Whether this node has a direct link to `node`. */
  hasDirect(node: string): boolean {
    return this.table.direct.has(node);
  }

  /** See {@link Node.addressesOf}. */
  addressesOf(node: string): string[] {
    return this.table.addresses.get(node) ?? [];
  }

  /** The addresses known for `node` (this node's listen addresses for itself), for refs it sends. */
  addressesFor(node: string): string[] | undefined {
    return node === this.id ? this.connector.listenAddrs : this.table.addresses.get(node);
  }

  /** Remember `addrs` for `node`, within the bound on what peers can make this node keep. */
  learnAddresses(node: string, addrs: string[]): void {
    this.table.learnAddresses(node, addrs);
  }

  /** See {@link Node.isReachable}. */
  isReachable(node: string): boolean {
    return this.members.isReachable(node);
  }

  /** Whether a lazy discovery reports `node` as a member (dialed on first use only). */
  isMember(node: string): boolean {
    return this.connector.isMember(node);
  }

  /** See {@link Node.linkStats}. */
  linkStats(): LinkStat[] {
    return this.#links.stats();
  }

  /** See {@link Node.disconnect}. */
  disconnect(node: string): void {
    this.table.direct.get(node)?.close({ kind: 'deliberate', text: 'disconnected' });
  }

  /** See {@link Node.monitorNode}. */
  monitorNode(node: string, fn: NodeWatcher): () => void {
    let set = this.#nodeWatchers.get(node);
    if (!set) this.#nodeWatchers.set(node, (set = new Set()));
    set.add(fn);
    if (!this.isReachable(node))
      queueMicrotask(() => set!.has(fn) && fn({ node, up: false, reason: 'noconnection' }));
    return () => set!.delete(fn);
  }

  /**
   * Mesh repair (core/connector.ts): `node` lost its route through `via` but may be alive. Its
   * session is settled now (envelopes on the dead route may be lost), but it is declared down
   * (nodeDown, names dropped, `nd` to the peers) only if no link to it comes up within the
   * heartbeat timeout. False if no direct dial can be tried.
   */
  rescue(node: string, reason: string, via: Link | undefined): boolean {
    const started = this.connector.rescue(node, () => {
      if (this.table.routes.has(node)) return; // another route came up meanwhile
      this.nodeLost(node, reason);
      this.table.broadcast(writeNodeDown(node), via);
    });
    if (started) this.sessionLost(node, reason);
    return started;
  }

  /** `node` is reachable: report it up (once). */
  markUp(node: string): void {
    if (this.table.reachable.has(node)) return;
    this.table.reachable.add(node);
    // Names of it that arrived before it was up (a KV watch before its presence) show now.
    this.registry.nodeUp(node);
    // We lost our session with it before: it may not know, and still hold its side.
    if (this.sessions.current(node) > 0) this.#keeper.tell(node);
    this.events.emit('nodeUp', { node });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: true });
  }

  /** `node` is unreachable: settle everything that depended on it. */
  nodeLost(node: string, reason: string): void {
    this.sessionLost(node, reason);
    const wasUp = this.table.reachable.delete(node);
    this.registry.dropNode(node);
    if (!wasUp) return;
    this.events.emit('nodeDown', { node, reason });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: false, reason });
  }

  /** This node lost its session with `node` (core/session.ts): settle it; the next one begins. */
  sessionLost(node: string, reason: string): void {
    this.#keeper.lost(node, reason);
  }

  /** Whether state an envelope of session `n` from `peer` creates may be kept (SessionKeeper). */
  admit(peer: string, n: number | undefined): boolean {
    return this.#keeper.admit(peer, n);
  }

  /** Report a malformed or refused envelope from `link`. */
  protocolError(link: Link, message: string, cause?: unknown): void {
    this.events.emit('protocolError', {
      error: new TroupeError('PROTOCOL_ERROR', message, { cause }),
      peer: link.peer,
      label: link.conn.label,
    });
  }

  /** Dial `node` directly if it can be (see the connector). */
  autoDial(node: string): void {
    this.connector.autoDial(node);
  }

  // ---------------------------------------------------------------------------------------
  // Routes and outgoing envelopes (the runtime's RuntimeWire)

  /** The link whose frame is being read now (a transfer's objects wait on its connection). */
  get decodingLink(): Link | undefined {
    return this.#inbound.decodingLink;
  }

  /** The link envelopes for `node` leave on, if any. */
  route(node: string): Link | undefined {
    return this.members.route(node);
  }

  /**
   * A ref to `node` (with its listen addresses `addrs`, if it carried them) was decoded. One that
   * arrived on a link to a node we have no route to teaches a route through that link, until
   * something better is known (transitive routing; see DESIGN.md).
   */
  learnRef(node: string, addrs: string[] | undefined): void {
    if (node === this.id) return;
    const via = this.#inbound.decodingLink;
    if (via && !this.connector.isMember(node)) this.table.learn(node, via);
    if (addrs) this.table.learnFirstAddresses(node, addrs);
  }

  /** Send a registry envelope on every direct link but `except`. */
  broadcast(text: string, except?: unknown): void {
    for (const l of this.table.direct.values())
      if (l !== except) sendRegistry(this.table, this.id, l, text);
  }

  /** See {@link Outbound.emit}. */
  emit(
    node: string,
    header: string,
    payload: string | undefined,
    what: { to: string; message?: unknown; droppable?: boolean },
  ): EmitFailure | undefined {
    return this.#out.emit(node, header, payload, what);
  }

  /** See {@link Outbound.emitTraffic}. */
  emitTraffic(
    node: string,
    kind: number,
    x: number,
    y: number,
    payload: string,
    to: string,
    message?: unknown,
    droppable = false,
  ): EmitFailure | undefined {
    return this.#out.emitTraffic(node, kind, x, y, payload, to, message, droppable);
  }

  /** See {@link Outbound.sendCall}. */
  sendCall(node: string, id: number, callId: number, payload: string): TroupeError | undefined {
    return this.#out.sendCall(node, id, callId, payload);
  }

  /** The error for an envelope a congested link refused (see `maxLinkQueue`). */
  congested(link: Link): TroupeError {
    return this.#out.congested(link);
  }

  // ---------------------------------------------------------------------------------------
  // Shutdown

  /** Shutdown begins: stop the timers of retired links. */
  stopRetiring(): void {
    this.#links.stopRetiring();
  }

  /** Shutdown: drop the route switches in progress and what they hold. */
  stopSwitches(): void {
    this.switches.stop();
  }

  /** Shutdown: close every link, then stop the discoveries and close the transports. */
  close(): Promise<void> {
    this.forwarder.stop();
    this.#links.closeAll();
    return this.connector.close();
  }
}

import type { Clock } from './clock.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import { Link, type LinkOwner, type LinkSettings, type LostReason } from './link.ts';
import {
  EnvelopeHeader,
  fastHeader,
  parseHeader,
  canonicalHop,
  nextHopText,
  parseDirectHeader,
  directHeader,
  directFields,
  TrafficHeaders,
  DIRECT_CALL,
  DIRECT_REPLY,
  DIRECT_SEND,
  ENVELOPE_SEPARATOR,
  PAYLOAD_SEPARATOR,
  envelope,
  type RoutedHeader,
} from './protocol.ts';
import type { SessionBook } from './session.ts';
import type { Registry } from './registry.ts';
import type { Connection, Transport } from './transport.ts';
import type { Discovery } from './discovery.ts';
import type { DeadLetterReason, NodeEvents, ResolvedOptions } from './node-options.ts';
import type { ActorLinks } from './actor-links.ts';
import { Connector, type ConnectorHost } from './connector.ts';

/** Most routes a node keeps (bounds what hostile refs can add). */
export const MAX_ROUTES = 10_000;
/** Most registry names a node accepts from its peers (its own actors may always register). */
const MAX_NAMES = 100_000;
/** A relay reports the envelopes it dropped to their senders at most this often (ms) per sender, target and reason. */
const DROP_REPORT_MS = 250;
/** Most registry names one peer may add (names of its own actors and of nodes behind it). */
export const MAX_NAMES_PER_PEER = 50_000;

/**
 * What the router needs from its node's runtime: the envelopes for this node's actors, the
 * actor links, replies with errors, dead letters and the end of a session. @internal
 */
export interface RouterHost extends ConnectorHost {
  readonly incarnation: string;
  readonly actorLinks: ActorLinks;
  inSend(id: number, origin: string, payload: string | undefined): void;
  /** An awaited send (`s` with `f:1`), under end-to-end credit. */
  inFlow(id: number, origin: string, payload: string | undefined): void;
  /** Node `origin` granted `bytes` of credit back for this node's awaited sends (`fg`). */
  inGrant(origin: string, bytes: number): void;
  inCall(id: number, origin: string, callId: number, payload: string | undefined): void;
  inReply(callId: number, ok: 0 | 1, payload: string | undefined): void;
  inSpawn(h: Extract<EnvelopeHeader, { t: 'sp' }>, payload: string | undefined): void;
  inCancel(id: number, origin: string, callId: number): void;
  replyError(node: string, callId: number, error: TroupeError): void;
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
  settleSession(node: string, reason: string): void;
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

/**
 * The link layer of a node: its links to peer nodes (handshake, duplicates, loss), the routes to
 * every node it can reach (directly or through a peer), membership gossip, forwarding of
 * envelopes for other nodes, route switches and the session envelopes (docs/protocol.md). It
 * reads every incoming envelope and hands those for this node's actors to the {@link Node};
 * dialing, listening and discoveries are its {@link Connector}'s. @internal
 */
export class Router {
  /** Listening, dialing, redialing and discoveries. */
  readonly connector: Connector;

  readonly #node: RouterHost;
  readonly #id: string;
  readonly #headers: TrafficHeaders;
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #events: Emitter<NodeEvents>;
  readonly #sessions: SessionBook;
  readonly #registry: Registry;
  readonly #owner: LinkOwner;
  #links = new Set<Link>();
  /** Names each peer added to the registry (capped at {@link MAX_NAMES_PER_PEER}). */
  #namesBy = new Map<Link, number>();
  /** Drops of others' envelopes not yet reported to their senders, by `origin\ntarget\nreason`. */
  #drops = new Map<string, number>();
  #dropTimer: unknown;
  #direct = new Map<string, Link>();
  #routes = new Map<string, Link>();
  #reachable = new Set<string>();
  #addresses = new Map<string, string[]>();
  #decodeLink: Link | undefined;
  #nodeWatchers = new Map<
    string,
    Set<(e: { node: string; up: boolean; reason?: string }) => void>
  >();
  #pendingAttach = new Map<
    Link,
    { resolve: (peer: string) => void; reject: (e: unknown) => void }
  >();
  /** Timers closing retired duplicate links (cleared on shutdown). */
  #retiring = new Map<Link, unknown>();
  /** Route changes in progress: envelopes for the node wait until the old route is flushed. */
  #switching = new Map<string, { held: string[]; timer: unknown; marker: number; old: Link }>();
  #nextMarker = 1;
  /** The error reported with `overflow` dead letters, one per link. */
  #overflowErrors = new WeakMap<Link, TroupeError>();
  /** Envelopes for a member (lazy links) held until the link dialed on first use is up. */
  #held = new Map<Link, { node: string; texts: string[]; chars: number }>();

  constructor(node: RouterHost, parts: RouterParts) {
    this.#node = node;
    this.#id = node.id;
    this.#headers = new TrafficHeaders(node.id, MAX_ROUTES);
    this.#options = node.options;
    this.#clock = node.clock;
    this.#events = node.events;
    this.#sessions = parts.sessions;
    this.#registry = parts.registry;
    this.#owner = this.#makeLinkOwner();
    this.connector = new Connector(node, this, parts.transports, parts.discoveries);
  }

  // ---------------------------------------------------------------------------------------
  // Links

  /** See {@link Node.attach}. */
  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    if (this.#node.isShutdown) {
      conn.close();
      return Promise.reject(new TroupeError('SHUTDOWN', 'node is shut down'));
    }
    if (!initiator) {
      const refused = this.#overConnectionLimits();
      if (refused) {
        // Refuse before any work (no Link, no nonce, no timer): a connection flood costs little.
        const error = new TroupeError('PROTOCOL_ERROR', `${refused}; refusing ${conn.label}`);
        this.#events.emit('protocolError', { error, label: conn.label });
        conn.onframe = null;
        conn.send(JSON.stringify({ t: 'reject', code: error.code, message: refused }));
        conn.close();
        return Promise.reject(error);
      }
    }
    return this.attachLink(conn, initiator, options.secret).up;
  }

  /** Why an accepted connection must be refused now (`maxConnections`, `maxUnauthenticated`), if it must. */
  #overConnectionLimits(): string | undefined {
    const { maxConnections, maxUnauthenticated } = this.#options;
    if (this.#links.size >= maxConnections)
      return `too many connections (maxConnections ${maxConnections})`;
    let handshaking = 0;
    for (const l of this.#links) if (l.state === 'handshake' && !l.initiator) handshaking++;
    if (handshaking >= maxUnauthenticated)
      return `too many unauthenticated connections (maxUnauthenticated ${maxUnauthenticated})`;
    return undefined;
  }

  /** Start a link on `conn`; `up` resolves with the peer's node id once the handshake is done. */
  attachLink(
    conn: Connection,
    initiator: boolean,
    secret?: string,
  ): { link: Link; up: Promise<string> } {
    let link!: Link;
    const up = new Promise<string>((resolve, reject) => {
      link = new Link(this.#owner, conn, initiator, secret);
      this.#pendingAttach.set(link, { resolve, reject });
      this.#links.add(link);
    });
    return { link, up };
  }

  /** Membership gossip: this node and its direct peers, with listen addresses. */
  #membership(): string {
    const m: [string, string[]][] = [[this.#id, this.connector.listenAddrs]];
    for (const peer of this.#direct.keys()) m.push([peer, this.#addresses.get(peer) ?? []]);
    return JSON.stringify({ t: 'mb', m });
  }

  /** See {@link Node.nodes}. */
  nodes(): string[] {
    return [...this.#reachable];
  }

  /** See {@link Node.peers}. */
  peers(): string[] {
    return [...this.#direct.keys()];
  }

  /** Whether this node has a direct link to `node`. */
  hasDirect(node: string): boolean {
    return this.#direct.has(node);
  }

  /** See {@link Node.addressesOf}. */
  addressesOf(node: string): string[] {
    return this.#addresses.get(node) ?? [];
  }

  /** The addresses known for `node` (this node's listen addresses for itself), for refs it sends. */
  addressesFor(node: string): string[] | undefined {
    return node === this.#id ? this.connector.listenAddrs : this.#addresses.get(node);
  }

  /** Remember `addrs` for `node`, within the bound on what peers can make this node keep. */
  learnAddresses(node: string, addrs: string[]): void {
    if (this.#addresses.size < MAX_ROUTES || this.#addresses.has(node))
      this.#addresses.set(node, addrs);
  }

  /** See {@link Node.isReachable}. */
  isReachable(node: string): boolean {
    return node === this.#id || this.#routes.has(node) || this.connector.isMember(node);
  }

  /** A lazy discovery reported member `node` (connector): reachable, dialed on first use. */
  memberUp(node: string): void {
    const via = this.#routes.get(node);
    // Learned through another node's gossip before its presence: reach it directly instead.
    if (via !== undefined && via.peer !== node && !this.#switching.has(node))
      this.#routes.delete(node);
    this.#markUp(node);
  }

  /** Member `node` left (connector): down, unless a direct link to it still stands. */
  memberDown(node: string): void {
    if (this.#direct.has(node)) return; // its link's heartbeats decide
    this.#routes.delete(node);
    this.#nodeLost(node, 'noconnection');
  }

  /** Hold `text` for the member a link being dialed leads to; false when over `maxLinkQueue`. */
  #holdLazy(link: Link, node: string, text: string): boolean {
    let held = this.#held.get(link);
    if (!held) this.#held.set(link, (held = { node, texts: [], chars: 0 }));
    if (held.chars + text.length > this.#options.maxLinkQueue) return false;
    held.texts.push(text);
    held.chars += text.length;
    return true;
  }

  /** Put `text` on `link` (held while it is a member's link still in its handshake). */
  #put(link: Link, node: string, text: string, droppable: boolean): boolean {
    return link.state === 'handshake'
      ? this.#holdLazy(link, node, text)
      : link.enqueue(text, droppable);
  }

  /** The member link `link` is up or failed: send what waited for it, or settle it. */
  #releaseHeld(link: Link): void {
    const held = this.#held.get(link);
    if (!held) return;
    this.#held.delete(link);
    const to =
      link.state === 'up' && link.peer === held.node ? this.#direct.get(held.node) : undefined;
    if (to) {
      for (const t of held.texts) if (!to.enqueue(t)) this.#deadLetter(held.node, 'overflow');
      return;
    }
    for (let i = 0; i < held.texts.length; i++) this.#deadLetter(held.node, 'unreachable');
    // What was sent to it (calls, monitors, links) ends as if its link had died.
    this.#sessionLost(held.node, 'noconnection');
  }

  /** See {@link Node.linkStats}. */
  linkStats(): {
    node: string;
    label: string;
    envelopesOut: number;
    framesOut: number;
    framesIn: number;
    queued: number;
    backlog: number;
    holding: boolean;
  }[] {
    return [...this.#direct].map(([node, l]) => ({
      node,
      label: l.conn.label,
      ...l.stats,
      queued: l.queued,
      backlog: l.backlog,
      holding: l.holding,
    }));
  }

  /** See {@link Node.disconnect}. */
  disconnect(node: string): void {
    this.#direct.get(node)?.close('disconnected');
  }

  /** See {@link Node.monitorNode}. */
  monitorNode(
    node: string,
    fn: (e: { node: string; up: boolean; reason?: string }) => void,
  ): () => void {
    let set = this.#nodeWatchers.get(node);
    if (!set) this.#nodeWatchers.set(node, (set = new Set()));
    set.add(fn);
    if (!this.isReachable(node))
      queueMicrotask(() => set!.has(fn) && fn({ node, up: false, reason: 'noconnection' }));
    return () => set!.delete(fn);
  }

  #makeLinkOwner(): LinkOwner {
    const settings: LinkSettings = {
      secret: this.#options.secret,
      heartbeatInterval: this.#options.heartbeatInterval,
      heartbeatTimeout: this.#options.heartbeatTimeout,
      handshakeTimeout: this.#options.handshakeTimeout,
      maxFrameSize: this.#options.maxFrameSize,
      highWaterMark: this.#options.highWaterMark,
      maxLinkQueue: this.#options.maxLinkQueue,
      maxLinkHeld: this.#options.maxLinkHeld,
      writeStallTimeout: this.#options.writeStallTimeout,
    };
    return {
      id: this.#id,
      incarnation: this.#node.incarnation,
      clock: this.#clock,
      listenAddresses: () => this.connector.listenAddrs,
      linkSettings: () => settings,
      onLinkUp: (l) => {
        // Session counts are per life of the peer: a restarted peer starts from zero.
        this.#sessions.life(l.peer, l.peerIncarnation);
        // First envelope on every link, before anything #linkUp sends (see SessionHeader).
        l.enqueue(`{"t":"ss","l":${this.#sessions.current(l.peer)}}`);
        this.#linkUp(l);
        if (this.#held.size !== 0) this.#releaseHeld(l);
      },
      onLinkFrame: (l, f) => this.#onFrame(l, f),
      onLinkDown: (l, r) => this.#linkDown(l, r),
      onLinkError: (l, error) =>
        this.#events.emit('protocolError', {
          error,
          peer: l.peer || undefined,
          label: l.conn.label,
        }),
      onLinkLost: (l, envelopes, reason) => this.#lostEnvelopes(l, envelopes, reason),
      admit: (l) => this.#admitPeer(l),
    };
  }

  /**
   * Identities (docs/security.md, "Identities"): a peer admitted by a lesser secret (a page, by
   * the relay's browser secret) may not take the id of a cluster member — one linked to this
   * node by the node's own secret, or reached through such a link — nor the id of another live
   * peer of its kind (another incarnation). A newcomer with lesser rights never displaces a link.
   */
  #admitPeer(link: Link): string | undefined {
    const id = link.peer;
    // The transport's own rule (a relay binds page ids to the credential that admitted them).
    const own = (): string | undefined =>
      link.conn.admit?.({ node: id, incarnation: link.peerIncarnation });
    if (!link.foreign) return own();
    const existing = this.#direct.get(id);
    if (existing && !existing.foreign)
      return `node id "${id}" belongs to a cluster member; a peer admitted by another secret cannot take it`;
    const via = this.#routes.get(id);
    if (via && !via.foreign && via !== existing)
      return `node id "${id}" belongs to a cluster member reached through ${via.peer}; a peer admitted by another secret cannot take it`;
    if (existing && existing.state === 'up' && existing.peerIncarnation !== link.peerIncarnation) {
      return `node id "${id}" is in use by another live peer; try again once it has left`;
    }
    return own();
  }

  /**
   * Report what a lost (or stalled) link had taken and the peer had not confirmed: one
   * `deadLetter` per envelope that carries something (traffic, signals, link requests, spawns);
   * link-local control (heartbeats, gossip, registry) is not a message.
   */
  #lostEnvelopes(link: Link, envelopes: string[], reason: LostReason): void {
    if (!this.#events.has('deadLetter')) return;
    for (const text of envelopes) {
      const kind = text.charCodeAt(0);
      const tab = text.indexOf(PAYLOAD_SEPARATOR);
      const payload = tab < 0 ? undefined : text.slice(tab + 1);
      let to: string;
      let carries = false;
      if (kind === DIRECT_SEND || kind === DIRECT_CALL || kind === DIRECT_REPLY) {
        if (!parseDirectHeader(text, tab < 0 ? text.length : tab)) continue;
        to =
          kind === DIRECT_REPLY
            ? `${link.peer}#call${directFields.x}`
            : `${link.peer}/${directFields.x}`;
        carries = kind !== DIRECT_REPLY;
      } else {
        let h: Record<string, unknown>;
        try {
          h = parseHeader(tab < 0 ? text : text.slice(0, tab)) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (typeof h.n !== 'string') continue; // link-local control
        to = h.t === 'r' ? `${h.n}#call${String(h.c)}` : `${h.n}/${String(h.a ?? h.t)}`;
        carries = h.t === 's' || h.t === 'c';
      }
      let message: unknown;
      if (carries && payload !== undefined) {
        const d = this.#node.decodePayload(payload, to);
        if (d.ok) message = d.value;
      }
      this.#deadLetter(
        to,
        reason,
        message,
        new TroupeError(
          'TRANSPORT_CLOSED',
          `link to ${link.peer} ${reason === 'stalled' ? 'stalled' : 'lost'} before the peer confirmed it (${link.closeReason})`,
        ),
      );
    }
  }

  #linkUp(link: Link): void {
    const peer = link.peer;
    const existing = this.#direct.get(peer);
    if (existing) {
      const dialer = (l: Link) => (l.initiator ? this.#id : l.peer);
      // The peer restarted, or it dialed us again while we still hold the link it dialed before:
      // a node redials only after losing its link, and with it everything that crossed it
      // (monitors, links, calls). Mirror that loss here, or our side of those would be orphaned.
      const restarted = existing.peerIncarnation !== link.peerIncarnation;
      const redialed = !restarted && dialer(link) === peer && dialer(existing) === peer;
      if (restarted || redialed) {
        const reason = restarted ? 'peer restarted' : 'peer redialed';
        this.#direct.delete(peer);
        // linkUp/linkDown pair up per peer (they track node.peers()): the old link goes down first.
        this.#events.emit('linkDown', { node: peer, label: existing.conn.label, reason });
        this.#lostVia(existing, 'noconnection');
        existing.close(reason);
        // A new life of the peer knows nothing of our past sessions with its old one.
        if (restarted) this.#sessions.reset(peer);
      } else {
        // Two links to one node (both dialed at once): keep the one dialed by the lower node id,
        // so both sides choose the same; both dialed by this node: keep the newer.
        const keepNew = dialer(link) === dialer(existing) || dialer(link) < dialer(existing);
        const drop = keepNew ? existing : link;
        if (!keepNew) {
          this.#pendingAttach.get(link)?.resolve(peer);
          this.#pendingAttach.delete(link);
          this.#retire(link);
          return;
        }
        this.#direct.set(peer, link);
        for (const [n, l] of this.#routes) if (l === drop) this.#routes.set(n, link);
        if (drop.state === 'up') this.#startSwitch(peer, drop);
        this.#retire(drop);
        this.#pendingAttach.get(link)?.resolve(peer);
        this.#pendingAttach.delete(link);
        return;
      }
    }
    this.#direct.set(peer, link);
    const previous = this.#routes.get(peer);
    this.#routes.set(peer, link);
    // The route shortened (a relayed path became a direct link): keep the pair's order.
    if (previous !== undefined && previous !== link) {
      if (previous.state === 'up') this.#startSwitch(peer, previous);
      // The old route is closing: what was on it may be lost (the session goes with it).
      else this.#routeBroken(peer, undefined);
    }
    if (link.peerAddresses.length) this.#addresses.set(peer, link.peerAddresses);
    this.connector.linkUp(peer);
    this.#events.emit('linkUp', { node: peer, label: link.conn.label });
    this.#markUp(peer);
    // Membership first: the names that follow may be of nodes the peer learns of from it.
    const members = this.#membership();
    for (const l of this.#direct.values()) l.enqueue(members);
    for (const text of this.#registry.snapshot()) link.enqueue(text);
    this.#pendingAttach.get(link)?.resolve(peer);
    this.#pendingAttach.delete(link);
  }

  /**
   * Stop using a duplicate link, but keep reading it (and its heartbeats going) for a heartbeat
   * timeout before closing it: the peer makes the same choice only when its copy of the other
   * link comes up, a moment later, and keeps sending on this one until then. Closing it at once
   * lost what was in flight on it, silently (calls sent on it hung until their timeout).
   */
  #retire(link: Link): void {
    const timer = this.#clock.setTimeout(() => {
      this.#retiring.delete(link);
      link.close('duplicate link');
    }, this.#options.heartbeatTimeout);
    this.#retiring.set(link, timer);
  }

  #linkDown(link: Link, reason: string): void {
    this.#links.delete(link);
    this.#namesBy.delete(link);
    // A route switch away from this link can no longer be flushed: what was on it is lost.
    if (this.#switching.size !== 0)
      for (const [n, sw] of [...this.#switching]) if (sw.old === link) this.#routeBroken(n, link);
    if (this.#held.size !== 0) this.#releaseHeld(link);
    const pending = this.#pendingAttach.get(link);
    if (pending) {
      this.#pendingAttach.delete(link);
      // Link reports a failed handshake as `handshake failed: CODE: message`.
      const code = /^(?:handshake failed: )?([A-Z_]+):/.exec(reason)?.[1];
      pending.reject(
        toTroupeError(
          new TroupeError(
            code === 'UNAUTHORIZED' ||
              code === 'VERSION_MISMATCH' ||
              code === 'FRAME_TOO_LARGE' ||
              code === 'PROTOCOL_ERROR'
              ? code
              : 'TRANSPORT_CLOSED',
            `link to ${link.conn.label} failed: ${reason}`,
          ),
        ),
      );
    }
    if (!link.peer || this.#direct.get(link.peer) !== link) {
      // never up, or a duplicate/replaced link: drop routes through it only
      for (const [n, l] of this.#routes) if (l === link) this.#routes.delete(n);
      return;
    }
    this.#direct.delete(link.peer);
    this.#events.emit('linkDown', { node: link.peer, label: link.conn.label, reason });
    this.#lostVia(link, 'noconnection');
    this.connector.linkDown(link, reason);
  }

  /** Drop every route through `link`; the nodes that leaves unreachable are lost. */
  #lostVia(link: Link, reason: string): void {
    const lost: string[] = [];
    for (const [n, l] of this.#routes) {
      if (l === link) {
        this.#routes.delete(n);
        lost.push(n);
      }
    }
    for (const n of lost) {
      // A member (lazy links) stays a member until its discovery says it left: its session ends.
      if (n === link.peer && this.connector.isMember(n)) {
        this.#sessionLost(n, reason);
        continue;
      }
      // Only routed through the dead link: dial it directly before declaring it down.
      if (n !== link.peer && this.#rescue(n, reason, link)) continue;
      this.#nodeLost(n, reason);
      const text = JSON.stringify({ t: 'nd', x: n });
      for (const l of this.#direct.values()) if (l !== link) l.enqueue(text);
    }
  }

  /**
   * Mesh repair (core/connector.ts): `node` lost its route through `via` but may be alive. Its
   * session is settled now (envelopes on the dead route may be lost), but it is declared down
   * (nodeDown, names dropped, `nd` to the peers) only if no link to it comes up within the
   * heartbeat timeout. False if no direct dial can be tried.
   */
  #rescue(node: string, reason: string, via: Link | undefined): boolean {
    const started = this.connector.rescue(node, () => {
      if (this.#routes.has(node)) return; // another route came up meanwhile
      this.#nodeLost(node, reason);
      const text = JSON.stringify({ t: 'nd', x: node });
      for (const l of this.#direct.values()) if (l !== via) l.enqueue(text);
    });
    if (started) this.#sessionLost(node, reason);
    return started;
  }

  #markUp(node: string): void {
    if (this.#reachable.has(node)) return;
    this.#reachable.add(node);
    // We lost our session with it before: it may not know, and still hold its side.
    if (this.#sessions.current(node) > 0) this.#sendSession(node);
    this.#events.emit('nodeUp', { node });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: true });
  }

  /** `node` is unreachable: settle everything that depended on it. */
  #nodeLost(node: string, reason: string): void {
    this.#sessionLost(node, reason);
    const wasUp = this.#reachable.delete(node);
    this.#registry.dropNode(node);
    if (!wasUp) return;
    this.#events.emit('nodeDown', { node, reason });
    const set = this.#nodeWatchers.get(node);
    if (set) for (const fn of [...set]) fn({ node, up: false, reason });
  }

  /** This node lost its session with `node` (core/session.ts): settle it; the next one begins. */
  #sessionLost(node: string, reason: string): void {
    this.#sessions.lost(node);
    this.#node.settleSession(node, reason);
  }

  /**
   * The session number `n` an envelope from `peer` carries (core/session.ts): a later session
   * than ours means the peer ended ours (settle our side, move to it); an earlier one means we
   * ended the peer's (tell it, `sr`). Whether state the envelope creates may be kept.
   */
  #admit(peer: string, n: number | undefined): boolean {
    if (n === undefined) return true;
    const mine = this.#sessions.current(peer);
    if (n > mine) {
      this.#sessions.advance(peer, n);
      this.#node.settleSession(peer, 'noconnection');
    } else if (n < mine) {
      this.#sendSession(peer);
      return false;
    }
    return true;
  }

  /** Tell `peer` the number of our session with it (routed `sr`). */
  #sendSession(peer: string): void {
    if (!this.route(peer)) return;
    this.emit(
      peer,
      JSON.stringify({ t: 'sr', n: peer, o: this.#id, h: 0, e: this.#sessions.current(peer) }),
      undefined,
      { to: peer },
    );
  }

  // ---------------------------------------------------------------------------------------
  // Routes and outgoing envelopes

  /** The link whose frame is being read now (a transfer's objects wait on its connection). */
  get decodingLink(): Link | undefined {
    return this.#decodeLink;
  }

  /** The link envelopes for `node` leave on, if any. */
  route(node: string): Link | undefined {
    const link = this.#routes.get(node);
    if (link !== undefined) return link;
    // A member (lazy links): its link, dialed now on first use.
    if (this.connector.isMember(node)) return this.connector.lazyLink(node);
    if (this.#direct.size !== 1) return link;
    // A leaf (a worker behind its tab, a page behind its relay) sends what it has no route for
    // up its only link: the node above knows more of the cluster.
    return this.#direct.values().next().value;
  }

  /** As {@link route}, without dialing a member. */
  #peekRoute(node: string): Link | undefined {
    return this.connector.isMember(node) ? this.#routes.get(node) : this.route(node);
  }

  /**
   * A ref to `node` (with its listen addresses `addrs`, if it carried them) was decoded. One that
   * arrived on a link to a node we have no route to teaches a route through that link, until
   * something better is known (transitive routing; see DESIGN.md).
   */
  learnRef(node: string, addrs: string[] | undefined): void {
    const via = this.#decodeLink;
    if (
      via &&
      node !== this.#id &&
      !this.#routes.has(node) &&
      this.#routes.size < MAX_ROUTES &&
      !this.connector.isMember(node)
    )
      this.#routes.set(node, via);
    if (
      addrs &&
      node !== this.#id &&
      !this.#addresses.has(node) &&
      this.#addresses.size < MAX_ROUTES
    )
      this.#addresses.set(node, addrs);
  }

  /** Send a registry envelope on every direct link but `except`. */
  broadcast(text: string, except?: unknown): void {
    for (const l of this.#direct.values()) if (l !== except) l.enqueue(text);
  }

  /**
   * Route one envelope; reports a failure as a dead letter and returns why (undefined when it
   * left). `droppable` (sends, spawn requests): refused while the link is congested.
   */
  emit(
    node: string,
    header: string,
    payload: string | undefined,
    what: { to: string; message?: unknown; droppable?: boolean },
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined {
    const link = this.route(node);
    if (!link) {
      this.#deadLetter(what.to, 'unreachable', what.message);
      return 'unreachable';
    }
    return this.#emitOn(
      link,
      node,
      payload === undefined ? header : header + PAYLOAD_SEPARATOR + payload,
      what.to,
      what.message,
      what.droppable === true,
    );
  }

  /**
   * Route a traffic envelope (`kind` {@link DIRECT_SEND}: `s` to actor `x`; {@link DIRECT_REPLY}:
   * `r` for call `x`, ok `y`): in the direct form on the node's own link, else in JSON. As
   * {@link emit}, with its dead-letter fields as arguments (no object per message).
   */
  emitTraffic(
    node: string,
    kind: number,
    x: number,
    y: number,
    payload: string,
    to: string,
    message?: unknown,
    droppable = false,
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined {
    const link = this.route(node);
    if (!link) {
      this.#deadLetter(to, 'unreachable', message);
      return 'unreachable';
    }
    const header =
      link.peer === node ? directHeader(kind, x, y) : this.#headers.json(kind, node, x, y);
    return this.#emitOn(link, node, header + PAYLOAD_SEPARATOR + payload, to, message, droppable);
  }

  #emitOn(
    link: Link,
    node: string,
    text: string,
    to: string,
    message: unknown,
    droppable: boolean,
  ): 'frame-too-large' | 'overflow' | undefined {
    if (link.peer !== node && this.#options.autoConnect) this.connector.autoDial(node);
    if (text.length > this.#options.maxFrameSize) {
      this.#deadLetter(
        to,
        'frame-too-large',
        message,
        new TroupeError(
          'FRAME_TOO_LARGE',
          `message of ${text.length} chars exceeds the frame limit`,
        ),
      );
      return 'frame-too-large';
    }
    if (this.#switching.size !== 0 && this.#hold(node, text)) return undefined;
    if (!this.#put(link, node, text, droppable)) {
      if (this.#events.has('deadLetter')) {
        // A flood of refused sends must stay cheap: one error (a stack capture) per link, reused.
        let error = this.#overflowErrors.get(link);
        if (!error) this.#overflowErrors.set(link, (error = this.congested(link)));
        this.#deadLetter(to, 'overflow', message, error);
      }
      return 'overflow';
    }
    return undefined;
  }

  /**
   * Send call `callId` to actor `id` of `node` (a reachable node); an error when the envelope is
   * too large or the link congested.
   */
  sendCall(node: string, id: number, callId: number, payload: string): TroupeError | undefined {
    const link = this.route(node)!;
    const header =
      link.peer === node
        ? directHeader(DIRECT_CALL, id, callId)
        : this.#headers.json(DIRECT_CALL, node, id, callId);
    const text = header + PAYLOAD_SEPARATOR + payload;
    if (text.length > this.#options.maxFrameSize)
      return new TroupeError(
        'FRAME_TOO_LARGE',
        `message of ${text.length} chars exceeds the frame limit`,
      );
    if (this.#switching.size !== 0 && this.#hold(node, text)) return undefined;
    return this.#put(link, node, text, true) ? undefined : this.congested(link);
  }

  /** The error for an envelope a congested link refused (see `maxLinkQueue`). */
  congested(link: Link): TroupeError {
    return new TroupeError(
      'MAILBOX_FULL',
      `link to ${link.peer} is congested: its queue is full (maxLinkQueue ${this.#options.maxLinkQueue} chars)`,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Incoming frames

  #onFrame(link: Link, frame: string): void {
    let start = 0;
    this.#decodeLink = link;
    try {
      for (;;) {
        const end = frame.indexOf(ENVELOPE_SEPARATOR, start);
        const text = end < 0 ? frame.slice(start) : frame.slice(start, end);
        if (text.length) this.#onEnvelope(link, text);
        if (end < 0) break;
        start = end + 1;
      }
    } finally {
      this.#decodeLink = undefined;
    }
  }

  #protocolError(link: Link, message: string, cause?: unknown): void {
    this.#events.emit('protocolError', {
      error: new TroupeError('PROTOCOL_ERROR', message, { cause }),
      peer: link.peer,
      label: link.conn.label,
    });
  }

  /** A direct traffic envelope (see {@link emitTraffic}): from the link's peer, for this node. */
  #onDirect(link: Link, kind: number, text: string): void {
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    if (!parseDirectHeader(text, tab < 0 ? text.length : tab))
      return this.#protocolError(link, 'malformed direct envelope header');
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    const { x, y } = directFields;
    if (kind === DIRECT_SEND) return this.#node.inSend(x, link.peer, payload);
    if (kind === DIRECT_CALL) return this.#node.inCall(x, link.peer, y, payload);
    return this.#node.inReply(x, y as 0 | 1, payload);
  }

  #onEnvelope(link: Link, text: string): void {
    const kind = text.charCodeAt(0);
    if (kind === DIRECT_SEND || kind === DIRECT_CALL || kind === DIRECT_REPLY)
      return this.#onDirect(link, kind, text);
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    const headText = tab < 0 ? text : text.slice(0, tab);
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    let raw: unknown;
    try {
      raw = parseHeader(headText);
    } catch (err) {
      return this.#protocolError(link, 'malformed envelope header', err);
    }
    // Where a canonical header's hop count is: forwarding rewrites just those digits.
    const hopAt = canonicalHop.at;
    const hopEnd = canonicalHop.end;
    let h = fastHeader(raw);
    if (h === undefined) {
      const parsed = EnvelopeHeader.safeParse(raw);
      if (!parsed.success) {
        const t = (raw as { t?: unknown } | null)?.t;
        return this.#protocolError(
          link,
          typeof t === 'string'
            ? `invalid or unknown envelope "${t.slice(0, 20)}"`
            : 'invalid envelope',
          parsed.error.issues,
        );
      }
      h = parsed.data;
    }
    if ('n' in h) {
      if (h.n !== this.#id)
        return this.#forward(link, h, payload, hopAt >= 0 ? text : undefined, hopAt, hopEnd);
      // This node never sends itself envelopes over a link: one that claims to come from here is
      // forged (a link request "from" one of our actors would make us signal it ourselves).
      if (h.o === this.#id)
        return this.#protocolError(link, `envelope "${h.t}" claims to come from this node`);
      // Learn a route to the origin; bounded, since a peer may claim any origin it likes.
      if (
        !this.#routes.has(h.o) &&
        this.#routes.size < MAX_ROUTES &&
        (link.peer === h.o || !this.connector.isMember(h.o))
      )
        this.#routes.set(h.o, link);
      if (!this.#reachable.has(h.o) && this.#routes.has(h.o)) this.#markUp(h.o);
    }
    switch (h.t) {
      // Envelopes for this node's actors go to the node (those of links and monitors to its ActorLinks).
      case 's':
        return h.f === 1
          ? this.#node.inFlow(h.a, h.o, payload)
          : this.#node.inSend(h.a, h.o, payload);
      case 'fg':
        return this.#node.inGrant(h.o, h.b);
      case 'c':
        return this.#node.inCall(h.a, h.o, h.c, payload);
      case 'r':
        return this.#node.inReply(h.c, h.k, payload);
      case 'ca':
        return this.#node.inCancel(h.a, h.o, h.c);
      case 'x':
        return this.#node.actorLinks.inExit(h.a, h.o, h.f, h.l === 1, payload);
      case 'l':
        if (!this.#admit(h.o, h.e)) return;
        return this.#node.actorLinks.inLink(h.t, h.a, h.o, h.f);
      case 'u':
        return this.#node.actorLinks.inLink(h.t, h.a, h.o, h.f);
      case 'm':
        if (!this.#admit(h.o, h.e)) return;
        return this.#node.actorLinks.inMonitor(h.a, h.o, h.w, h.m);
      case 'dm':
        return this.#node.actorLinks.inDemonitor(h.a, h.m);
      case 'd':
        return this.#node.actorLinks.inDown(h.w, h.m, h.o, h.a, payload);
      case 'sp':
        // A spawn of a stale session is dropped: its caller's call is (or will be) NODE_DOWN.
        if (!this.#admit(h.o, h.e)) return;
        return this.#node.inSpawn(h, payload);
      case 'dr':
        // A relay dropped messages of ours: one dead letter with the count.
        if (this.#events.has('deadLetter')) {
          const error = new TroupeError(
            h.r === 'overflow' ? 'MAILBOX_FULL' : 'NODE_DOWN',
            `${h.o} dropped ${h.k} message(s) from this node for ${h.x} (${h.r})`,
          );
          this.#events.emit('deadLetter', { to: h.x, reason: h.r, error, count: h.k });
        }
        return;
      // Link-layer envelopes.
      case 'rf': {
        // Everything the sender routed to us the old way has arrived: answer on the shortest way.
        const back = this.#direct.get(h.o) ?? this.#routes.get(h.o);
        back?.enqueue(JSON.stringify({ t: 'ra', n: h.o, o: this.#id, h: 0, k: h.k }));
        return;
      }
      case 'ra':
        return this.#endSwitch(h.o, h.k);
      case 'hb':
        return;
      case 'ss': {
        // The peer has lost its session with us since it last told us: it dropped state that we
        // still hold (monitors, links, calls across a link only it saw die). Settle it.
        const peer = link.peer;
        const current = this.#direct.get(peer);
        if (h.l > this.#sessions.current(peer) && current !== undefined && current !== link) {
          // The link we were using is dead on the peer's side; this one is its only link to us.
          const timer = this.#retiring.get(link);
          if (timer !== undefined) {
            this.#clock.clearTimeout(timer);
            this.#retiring.delete(link);
          }
          this.#direct.set(peer, link);
          for (const [n, l] of this.#routes) if (l === current) this.#routes.set(n, link);
          current.close('peer lost this link');
        }
        // A lower number needs no answer: our own `ss` on this link tells the peer.
        if (this.#sessions.advance(peer, h.l)) this.#node.settleSession(peer, 'noconnection');
        return;
      }
      case 'sr':
        this.#admit(h.o, h.e);
        return;
      case 'nd':
        // route(), not #routes: a leaf sends to nodes it has no route for up its only link.
        if (this.#peekRoute(h.x) === link && !this.#direct.has(h.x)) {
          this.#routes.delete(h.x);
          if (this.#rescue(h.x, 'noconnection', link)) return;
          this.#nodeLost(h.x, 'noconnection');
          const t = JSON.stringify({ t: 'nd', x: h.x });
          for (const l of this.#direct.values()) if (l !== link) l.enqueue(t);
        } else if (this.#switching.get(h.x)?.old === link) {
          // The route we are switching away from lost the node before it was flushed.
          this.#routeBroken(h.x, link);
        }
        return;
      case 'sl':
        if (
          h.x !== this.#id &&
          (this.#peekRoute(h.x) === link || this.#switching.get(h.x)?.old === link)
        )
          this.#routeBroken(h.x, link);
        return;
      case 'ga':
      case 'gd':
        if (h.x === this.#id) return this.#ownNameClaim(h.t, h.g, h.a, link);
        {
          // A peer speaks for its own actors and for nodes reached through it. A copy of a claim
          // about a node reached through another link is a flood arriving by a longer path:
          // the owner's path carries it too, so it is ignored (docs/security.md, "Registry").
          const via = this.#routes.get(h.x);
          if (h.x !== link.peer && via !== undefined && via !== link) return;
          // A claim about a node this node has no route to is not the peer's to make (a flood
          // of names for invented nodes): refused with an event. A leaf routes everything up
          // its only link, so it takes what that link says.
          if (h.x !== link.peer && this.route(h.x) !== link) {
            if (h.t === 'gd') return;
            return this.#protocolError(
              link,
              `${link.peer} claimed the name "${h.g.slice(0, 40)}" for node "${h.x.slice(0, 40)}", which is not reached through it: not added`,
            );
          }
          const had = this.#registry.get(h.g);
          if (h.t === 'ga' && !had) {
            if (this.#registry.size >= MAX_NAMES)
              return this.#protocolError(
                link,
                `registry full (${MAX_NAMES} names): "${h.g.slice(0, 40)}" not added`,
              );
            const mine = this.#namesBy.get(link) ?? 0;
            if (mine >= MAX_NAMES_PER_PEER) {
              return this.#protocolError(
                link,
                `${link.peer} added ${MAX_NAMES_PER_PEER} names (the most one peer may): "${h.g.slice(0, 40)}" not added`,
              );
            }
            this.#registry.apply(h.t, h.g, h.x, h.a, link);
            if (this.#registry.get(h.g)) this.#namesBy.set(link, mine + 1);
            return;
          }
          return this.#registry.apply(h.t, h.g, h.x, h.a, link);
        }
      case 'mb':
        for (const [node, addrs] of h.m) {
          // A member (lazy links) is reached directly when used, never through gossip routes.
          if (node === this.#id || this.connector.isMember(node)) continue;
          // The sender's direct peers are reachable through it until a shorter route is known.
          if (!this.#routes.has(node) && this.#routes.size < MAX_ROUTES) {
            this.#routes.set(node, link);
            this.#markUp(node);
          }
          if (!addrs.length) continue;
          this.learnAddresses(node, addrs);
          this.connector.autoDial(node);
        }
        return;
    }
  }

  /**
   * A peer's registry add or delete about one of this node's own actors. This node alone decides
   * its actors' names: such a claim is stale (flooding raced an unregister) or forged, so it is
   * not applied; the peer is corrected with what this node holds.
   */
  #ownNameClaim(op: 'ga' | 'gd', name: string, id: number, link: Link): void {
    const cur = this.#registry.get(name);
    const ours = cur !== undefined && cur.node === this.#id && cur.id === id;
    if (op === 'ga' && !ours)
      link.enqueue(JSON.stringify({ t: 'gd', g: name, x: this.#id, a: id }));
    if (op === 'gd' && ours) link.enqueue(JSON.stringify({ t: 'ga', g: name, x: this.#id, a: id }));
  }

  // ---------------------------------------------------------------------------------------
  // Route switches

  #startSwitch(node: string, oldLink: Link): void {
    if (this.#switching.has(node)) return;
    const marker = this.#nextMarker++;
    // If the answer never comes, the old route died with what was on it: see #routeBroken.
    const timer = this.#clock.setTimeout(() => {
      if (this.#switching.get(node)?.marker === marker) this.#routeBroken(node, undefined);
    }, this.#options.heartbeatTimeout);
    this.#switching.set(node, { held: [], timer, marker, old: oldLink });
    oldLink.enqueue(JSON.stringify({ t: 'rf', n: node, o: this.#id, h: 0, k: marker }));
  }

  /**
   * Envelopes to `node` may have been lost on their way, though `node` is still reachable: the
   * old route of a switch died before it was flushed, or a node we route through said so (`sl`,
   * from `from`). Our session with `node` is lost (settled here, told to `node` with `sr`), and
   * so is that of every node routing to `node` through us, since we may have forwarded its
   * envelopes the old way: they are told with `sl`. Flush markers of others that we hold are not
   * released, so their switches fail too rather than confirm a route that lost envelopes.
   */
  #routeBroken(node: string, from: Link | undefined): void {
    const sw = this.#switching.get(node);
    if (sw !== undefined) {
      this.#switching.delete(node);
      this.#clock.clearTimeout(sw.timer);
    }
    this.#sessionLost(node, 'route lost');
    const text = JSON.stringify({ t: 'sl', x: node });
    for (const l of this.#direct.values()) if (l !== from && l.peer !== node) l.enqueue(text);
    this.#sendSession(node);
    if (sw === undefined) return;
    const link = this.route(node);
    for (const held of sw.held) {
      if (held.startsWith('{"t":"rf"')) continue;
      if (
        link === undefined ||
        !link.enqueue(link.peer === node ? held : this.#headers.undirect(held, node))
      )
        this.#deadLetter(node, link ? 'overflow' : 'unreachable');
    }
  }

  /** Hold `text` for `node` if its route is switching; false if it may go now. */
  #hold(node: string, text: string): boolean {
    const sw = this.#switching.get(node);
    if (sw === undefined) return false;
    sw.held.push(text);
    return true;
  }

  #endSwitch(node: string, marker: number): void {
    const sw = this.#switching.get(node);
    if (sw === undefined || sw.marker !== marker) return;
    this.#switching.delete(node);
    this.#clock.clearTimeout(sw.timer);
    const link = this.route(node);
    for (const text of sw.held) {
      if (
        link === undefined ||
        !link.enqueue(link.peer === node ? text : this.#headers.undirect(text, node))
      )
        this.#deadLetter(node, link ? 'overflow' : 'unreachable');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Forwarding

  /**
   * Forward an envelope for another node. `received` (with its hop digits at `hopAt..hopEnd`) is
   * the envelope as it arrived when its header was canonical: it leaves with only the hop count
   * rewritten, neither its header nor its payload encoded again.
   */
  #forward(
    from: Link,
    h: RoutedHeader,
    payload: string | undefined,
    received?: string,
    hopAt = -1,
    hopEnd = 0,
  ): void {
    if (h.h + 1 > this.#options.hopLimit) {
      this.#events.emit('protocolError', {
        error: new TroupeError(
          'HOP_LIMIT',
          `envelope for ${h.n} exceeded ${this.#options.hopLimit} hops`,
        ),
        peer: from.peer,
      });
      if (h.t === 'c' || h.t === 'sp')
        this.#node.replyError(
          h.o,
          h.c,
          new TroupeError('HOP_LIMIT', `no route to ${h.n} within ${this.#options.hopLimit} hops`),
        );
      return;
    }
    if (
      h.o !== this.#id &&
      !this.#routes.has(h.o) &&
      this.#routes.size < MAX_ROUTES &&
      !this.connector.isMember(h.o)
    )
      this.#routes.set(h.o, from);
    const link = this.route(h.n);
    if (!link || link === from) {
      if (h.t === 'c' || h.t === 'sp')
        this.#node.replyError(
          h.o,
          h.c,
          new TroupeError('NODE_DOWN', `node ${h.n} is not reachable from ${this.#id}`),
        );
      else if (h.t === 'm')
        this.#node.actorLinks.sendDown(h.o, h.w, h.m, h.n, h.a, 'noconnection', undefined);
      else {
        this.#deadLetter(`${h.n}/${'a' in h ? h.a : '?'}`, 'unreachable');
        this.#noteDrop(h, 'unreachable');
      }
      return;
    }
    // Relays forward the payload bytes untouched: only the small header is rewritten. A relay
    // in front of a slow peer bounds what it holds: sends, calls and spawns past maxLinkQueue
    // are dropped (calls and spawns get a MAILBOX_FULL reply).
    // Awaited sends (`f`) are bounded by their end-to-end credit instead: never dropped here.
    const droppable = (h.t === 's' && h.f !== 1) || h.t === 'c' || h.t === 'sp';
    const text =
      received !== undefined
        ? nextHopText(received, hopAt, hopEnd, h.h)
        : envelope({ ...h, h: h.h + 1 }, payload);
    if (this.#switching.size !== 0 && this.#hold(h.n, text)) return;
    if (!this.#put(link, h.n, text, droppable)) {
      const error = this.congested(link);
      if (h.t === 'c' || h.t === 'sp') this.#node.replyError(h.o, h.c, error);
      else {
        this.#deadLetter(`${h.n}/${'a' in h ? h.a : '?'}`, 'overflow', undefined, error);
        this.#noteDrop(h, 'overflow');
      }
    }
  }

  /**
   * Count an envelope of another node's that this node dropped while forwarding it; the counts
   * go to their senders (`dr`), at most once per sender, target and reason every
   * {@link DROP_REPORT_MS} (a dropped report is not reported: it would be a loop).
   */
  #noteDrop(h: RoutedHeader, reason: 'overflow' | 'unreachable'): void {
    if (h.t === 'dr' || h.o === this.#id) return;
    const key = `${h.o}\n${h.n}\n${reason}`;
    if (this.#drops.size >= MAX_ROUTES && !this.#drops.has(key)) return;
    this.#drops.set(key, (this.#drops.get(key) ?? 0) + 1);
    this.#dropTimer ??= this.#clock.setTimeout(this.#reportDrops, DROP_REPORT_MS);
  }

  #reportDrops = (): void => {
    this.#dropTimer = undefined;
    const drops = this.#drops;
    this.#drops = new Map();
    for (const [key, k] of drops) {
      const [origin, target, r] = key.split('\n');
      const link = this.route(origin);
      if (!link) continue;
      link.enqueue(JSON.stringify({ t: 'dr', n: origin, o: this.#id, h: 0, x: target, k, r }));
    }
  };

  #deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void {
    this.#node.deadLetter(to, reason, message, error);
  }

  // ---------------------------------------------------------------------------------------
  // Shutdown

  /** Shutdown begins: stop the timers of retired links. */
  stopRetiring(): void {
    for (const timer of this.#retiring.values()) this.#clock.clearTimeout(timer);
    this.#retiring.clear();
  }

  /** Shutdown: drop the route switches in progress and what they hold. */
  stopSwitches(): void {
    for (const sw of this.#switching.values()) this.#clock.clearTimeout(sw.timer);
    this.#switching.clear();
  }

  /** Shutdown: close every link, then stop the discoveries and close the transports. */
  close(): Promise<void> {
    this.#clock.clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    this.#drops.clear();
    for (const link of [...this.#links]) link.close('shutdown');
    return this.connector.close();
  }
}

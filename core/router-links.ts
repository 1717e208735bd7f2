import type { Clock } from './clock.ts';
import { type CloseReason, linkFailure } from './close-reason.ts';
import type { Connector } from './connector.ts';
import { lostEnvelope } from './envelope-read.ts';
import { EnvelopeReader } from './envelope.ts';
import { writeMembers, writeNodeDown, writeReject, writeSession } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import { Link, type LinkOwner, type LinkSettings, type LostReason } from './link.ts';
import type { DeadLetterReason, NodeEvents, ResolvedOptions } from './node-options.ts';
import type { Registry } from './registry.ts';
import type { RouteSwitches } from './route-switches.ts';
import { type RouteTable, sendRegistry } from './route-table.ts';
import type { SessionBook } from './session.ts';
import type { Connection } from './transport.ts';

/** How every link closes when its node shuts down. */
const SHUTDOWN: CloseReason = { kind: 'shutdown', text: 'shutdown' };

import type { LinkStat } from './node-api.ts';

export type { LinkStat };

/** What the link book needs from its router and node. @internal */
export interface LinkBookHost {
  readonly id: string;
  readonly clock: Clock;
  readonly options: ResolvedOptions;
  readonly events: Emitter<NodeEvents>;
  readonly table: RouteTable<Link>;
  readonly switches: RouteSwitches<Link>;
  readonly sessions: SessionBook;
  readonly registry: Registry;
  readonly connector: Pick<Connector, 'listenAddrs' | 'linkUp' | 'linkDown'>;
  readonly runtime: {
    readonly incarnation: string;
    readonly isShutdown: boolean;
    deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
    decodePayload(
      payload: string | undefined,
      to: string,
    ): { ok: true; value: unknown } | { ok: false; error: TroupeError };
  };
  /** A frame arrived on `link`. */
  frame(link: Link, frame: string): void;
  /** `link` is gone: forget what it added. */
  linkGone(link: Link): void;
  markUp(node: string): void;
  nodeLost(node: string, reason: string): void;
  rescue(node: string, reason: string, via: Link | undefined): boolean;
  /** Whether a lazy discovery reports `node` as a member (dialed on first use only). */
  isMember(node: string): boolean;
  /** This node lost its session with `node`: settle it. */
  sessionLost(node: string, reason: string): void;
  /** Lazy links: a member's link (dialed on first use) is up or failed. */
  readonly members: { release(link: Link): void };
}

/**
 * The links of a node (a part of the Router): attaching connections (within the connection
 * limits), the identities peers may take, a link coming up (duplicates, restarted peers,
 * membership), retiring duplicates, and a link going down with what it carried. @internal
 */
export class LinkBook {
  readonly #r: LinkBookHost;
  readonly #owner: LinkOwner;
  readonly #reader = new EnvelopeReader();
  #links = new Set<Link>();
  #pendingAttach = new Map<
    Link,
    { resolve: (peer: string) => void; reject: (e: unknown) => void }
  >();
  /** Timers closing retired duplicate links (cleared on shutdown). */
  #retiring = new Map<Link, unknown>();

  constructor(host: LinkBookHost) {
    this.#r = host;
    this.#owner = this.#makeOwner();
  }

  /** See {@link Node.attach}. */
  attach(conn: Connection, initiator: boolean, options: { secret?: string } = {}): Promise<string> {
    if (this.#r.runtime.isShutdown) {
      conn.close();
      return Promise.reject(new TroupeError('SHUTDOWN', 'node is shut down'));
    }
    if (!initiator) {
      const refused = this.#overConnectionLimits();
      if (refused) {
        // Refuse before any work (no Link, no nonce, no timer): a connection flood costs little.
        const error = new TroupeError('PROTOCOL_ERROR', `${refused}; refusing ${conn.label}`);
        this.#r.events.emit('protocolError', { error, label: conn.label });
        conn.onframe = null;
        conn.send(writeReject(error.code, refused));
        conn.close();
        return Promise.reject(error);
      }
    }
    return this.attachLink(conn, initiator, options.secret).up;
  }

  /** Why an accepted connection must be refused now (`maxConnections`, `maxUnauthenticated`), if it must. */
  #overConnectionLimits(): string | undefined {
    const { maxConnections, maxUnauthenticated } = this.#r.options;
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

  #makeOwner(): LinkOwner {
    const o = this.#r.options;
    const settings: LinkSettings = {
      secret: o.secret,
      heartbeatInterval: o.heartbeatInterval,
      heartbeatTimeout: o.heartbeatTimeout,
      handshakeTimeout: o.handshakeTimeout,
      maxFrameSize: o.maxFrameSize,
      highWaterMark: o.highWaterMark,
      maxLinkQueue: o.maxLinkQueue,
      maxLinkHeld: o.maxLinkHeld,
      writeStallTimeout: o.writeStallTimeout,
    };
    return {
      id: this.#r.id,
      incarnation: this.#r.runtime.incarnation,
      clock: this.#r.clock,
      listenAddresses: () => this.#r.connector.listenAddrs,
      linkSettings: () => settings,
      onLinkUp: (l) => {
        // Session counts are per life of the peer: a restarted peer starts from zero.
        this.#r.sessions.life(l.peer, l.peerIncarnation);
        // First envelope on every link, before anything #linkUp sends (see SessionHeader).
        l.enqueue(writeSession(this.#r.sessions.current(l.peer)));
        this.#linkUp(l);
        this.#r.members.release(l);
      },
      onLinkFrame: (l, f) => this.#r.frame(l, f),
      onLinkDown: (l, r) => this.#linkDown(l, r),
      onLinkError: (l, error) =>
        this.#r.events.emit('protocolError', {
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
    const existing = this.#r.table.direct.get(id);
    if (existing && !existing.foreign)
      return `node id "${id}" belongs to a cluster member; a peer admitted by another secret cannot take it`;
    const via = this.#r.table.routes.get(id);
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
    if (!this.#r.events.has('deadLetter')) return;
    for (const text of envelopes) {
      const lost = lostEnvelope(this.#reader, text, link.peer);
      if (lost === undefined) continue;
      let message: unknown;
      if (lost.carries && lost.payload !== undefined) {
        const d = this.#r.runtime.decodePayload(lost.payload, lost.to);
        if (d.ok) message = d.value;
      }
      this.#r.runtime.deadLetter(
        lost.to,
        reason,
        message,
        new TroupeError(
          'TRANSPORT_CLOSED',
          `link to ${link.peer} ${reason === 'stalled' ? 'stalled' : 'lost'} before the peer confirmed it (${link.closeReason?.text ?? ''})`,
        ),
      );
    }
  }

  #linkUp(link: Link): void {
    const peer = link.peer;
    const { direct, routes } = this.#r.table;
    const existing = direct.get(peer);
    if (existing) {
      const dialer = (l: Link) => (l.initiator ? this.#r.id : l.peer);
      // The peer restarted, or it dialed us again while we still hold the link it dialed before:
      // a node redials only after losing its link, and with it everything that crossed it
      // (monitors, links, calls). Mirror that loss here, or our side of those would be orphaned.
      const restarted = existing.peerIncarnation !== link.peerIncarnation;
      const redialed = !restarted && dialer(link) === peer && dialer(existing) === peer;
      if (restarted || redialed) {
        const reason = restarted ? 'peer restarted' : 'peer redialed';
        direct.delete(peer);
        // linkUp/linkDown pair up per peer (they track node.peers()): the old link goes down first.
        this.#r.events.emit('linkDown', { node: peer, label: existing.conn.label, reason });
        this.#lostVia(existing, 'noconnection');
        existing.close({ kind: 'deliberate', text: reason });
        // A new life of the peer knows nothing of our past sessions with its old one.
        if (restarted) this.#r.sessions.reset(peer);
      } else {
        // Two links to one node (both dialed at once): keep the one dialed by the lower node id,
        // so both sides choose the same; both dialed by this node: keep the newer.
        const keepNew = dialer(link) === dialer(existing) || dialer(link) < dialer(existing);
        const drop = keepNew ? existing : link;
        if (keepNew) {
          direct.set(peer, link);
          this.#r.table.repoint(drop, link);
          if (drop.state === 'up') this.#r.switches.start(peer, drop);
        }
        this.#retire(drop);
        this.#attached(link, peer);
        return;
      }
    }
    direct.set(peer, link);
    const previous = routes.get(peer);
    routes.set(peer, link);
    // The route shortened (a relayed path became a direct link): keep the pair's order.
    if (previous !== undefined && previous !== link) {
      if (previous.state === 'up') this.#r.switches.start(peer, previous);
      // The old route is closing: what was on it may be lost (the session goes with it).
      else this.#r.switches.broken(peer, undefined);
    }
    if (link.peerAddresses.length) this.#r.table.addresses.set(peer, link.peerAddresses);
    this.#r.connector.linkUp(peer);
    this.#r.events.emit('linkUp', { node: peer, label: link.conn.label });
    this.#r.markUp(peer);
    // Membership gossip: this node and its direct peers, with listen addresses. It goes first:
    // the names that follow may be of nodes the peer learns of from it.
    const m: [string, string[]][] = [[this.#r.id, this.#r.connector.listenAddrs]];
    for (const p of direct.keys()) m.push([p, this.#r.table.addresses.get(p) ?? []]);
    this.#r.table.broadcast(writeMembers(m));
    for (const text of this.#r.registry.snapshot())
      sendRegistry(this.#r.table, this.#r.id, link, text);
    this.#attached(link, peer);
  }

  #attached(link: Link, peer: string): void {
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
    const timer = this.#r.clock.setTimeout(() => {
      this.#retiring.delete(link);
      link.close({ kind: 'deliberate', text: 'duplicate link' });
    }, this.#r.options.heartbeatTimeout);
    this.#retiring.set(link, timer);
  }

  /** `link` is now the only link to its peer: the one in use (`current`) died on the peer's side. */
  adopt(link: Link, current: Link): void {
    const timer = this.#retiring.get(link);
    if (timer !== undefined) {
      this.#r.clock.clearTimeout(timer);
      this.#retiring.delete(link);
    }
    this.#r.table.direct.set(link.peer, link);
    this.#r.table.repoint(current, link);
    current.close({ kind: 'lost', text: 'peer lost this link' });
  }

  #linkDown(link: Link, reason: CloseReason): void {
    this.#links.delete(link);
    this.#r.linkGone(link);
    // A route switch away from this link can no longer be flushed: what was on it is lost.
    this.#r.switches.linkDown(link);
    this.#r.members.release(link);
    const pending = this.#pendingAttach.get(link);
    if (pending) {
      this.#pendingAttach.delete(link);
      pending.reject(
        new TroupeError(linkFailure(reason), `link to ${link.conn.label} failed: ${reason.text}`),
      );
    }
    if (!link.peer || this.#r.table.direct.get(link.peer) !== link) {
      // never up, or a duplicate/replaced link: drop routes through it only
      this.#r.table.dropVia(link);
      return;
    }
    this.#r.table.direct.delete(link.peer);
    this.#r.events.emit('linkDown', {
      node: link.peer,
      label: link.conn.label,
      reason: reason.text,
    });
    this.#lostVia(link, 'noconnection');
    this.#r.connector.linkDown(link, reason);
  }

  /** Drop every route through `link`; the nodes that leaves unreachable are lost. */
  #lostVia(link: Link, reason: string): void {
    for (const n of this.#r.table.dropVia(link)) {
      // A member (lazy links) stays a member until its discovery says it left: its session ends.
      if (n === link.peer && this.#r.isMember(n)) {
        this.#r.sessionLost(n, reason);
        continue;
      }
      // Only routed through the dead link: dial it directly before declaring it down.
      if (n !== link.peer && this.#r.rescue(n, reason, link)) continue;
      this.#r.nodeLost(n, reason);
      this.#r.table.broadcast(writeNodeDown(n), link);
    }
  }

  /** The figures of every direct link. */
  stats(): LinkStat[] {
    return [...this.#r.table.direct].map(([node, l]) => ({
      node,
      label: l.conn.label,
      ...l.stats,
      queued: l.queued,
      backlog: l.backlog,
      holding: l.holding,
    }));
  }

  /** Shutdown begins: stop the timers of retired links. */
  stopRetiring(): void {
    for (const timer of this.#retiring.values()) this.#r.clock.clearTimeout(timer);
    this.#retiring.clear();
  }

  /** Shutdown: close every link. */
  closeAll(): void {
    for (const link of [...this.#links]) link.close(SHUTDOWN);
  }
}

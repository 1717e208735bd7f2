import type { ActorLinks } from './actor-links.ts';
import {
  type EnvelopeHandlers,
  type SpawnRequest,
  dispatchEnvelope,
  originOf,
  routed,
  targetOf,
} from './envelope-read.ts';
import {
  EnvelopeReader,
  fastHeader,
  isDirect,
  isShortRouted,
  DIRECT_CALL,
  DIRECT_SEND,
  ROUTED_CALL,
  ROUTED_SEND,
} from './envelope.ts';
import { writeNodeDown, writeRouteFlush } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import type { Forwarder } from './forwarder.ts';
import type { Link } from './link.ts';
import type { NodeEvents } from './node-options.ts';
import {
  ENVELOPE_SEPARATOR,
  EnvelopeHeader,
  isValidNodeId,
  PAYLOAD_SEPARATOR,
} from './protocol.ts';
import type { Registry } from './registry.ts';
import type { RouteSwitches } from './route-switches.ts';
import type { RouteTable } from './route-table.ts';
import type { SessionBook } from './session.ts';
import { Claims } from './router-claims.ts';

export { MAX_NAMES_PER_PEER, MAX_NODES_INTRODUCED_PER_PEER } from './router-claims.ts';

/** What the inbound side hands this node's own envelopes to: the node's runtime. @internal */
export interface InboundRuntime {
  readonly actorLinks: ActorLinks;
  inSend(id: number, origin: string, payload: string | undefined): void;
  /** An awaited send, under end-to-end credit. */
  inFlow(id: number, origin: string, payload: string | undefined): void;
  /** Node `origin` granted `bytes` of credit back for this node's awaited sends. */
  inGrant(origin: string, bytes: number): void;
  inCall(id: number, origin: string, callId: number, payload: string | undefined): void;
  inReply(callId: number, ok: 0 | 1, payload: string | undefined): void;
  inSpawn(request: SpawnRequest, payload: string | undefined): void;
  inCancel(id: number, origin: string, callId: number): void;
  settleSession(node: string, reason: string): void;
}

/** What the inbound side needs from its router. @internal */
export interface InboundHost {
  readonly id: string;
  readonly runtime: InboundRuntime;
  readonly table: RouteTable<Link>;
  readonly sessions: SessionBook;
  readonly registry: Registry;
  readonly events: Emitter<NodeEvents>;
  readonly switches: RouteSwitches<Link>;
  readonly forwarder: Forwarder<Link>;
  route(node: string): Link | undefined;
  /** Lazy links: `peekRoute` is as `route`, without dialing a member. */
  readonly members: { peekRoute(node: string): Link | undefined };
  /** Whether a lazy discovery reports `node` as a member. */
  isMember(node: string): boolean;
  /** Whether state an envelope of session `n` from `peer` creates may be kept (see Router). */
  admit(peer: string, n: number | undefined): boolean;
  markUp(node: string): void;
  nodeLost(node: string, reason: string): void;
  rescue(node: string, reason: string, via: Link | undefined): boolean;
  /** `link` is now the only link to its peer (the one in use died on the peer's side). */
  adopt(link: Link, current: Link): void;
  autoDial(node: string): void;
  protocolError(link: Link, message: string, cause?: unknown): void;
}

/**
 * Incoming frames (a part of the Router): split into envelopes, parsed and validated, then
 * forwarded (for another node) or handled: actor traffic goes to the runtime, links and
 * monitors to its actor links, and sessions, membership, the registry and route switches here.
 * @internal
 */
export class Inbound implements EnvelopeHandlers<Link> {
  readonly #host: InboundHost;
  readonly #id: string;
  readonly #reader = new EnvelopeReader();
  /** Registry claims from peers (core/router-claims.ts). */
  readonly #claims: Claims;
  #decodeLink: Link | undefined;
  /** The origin and target ids of the last short routed envelope that passed their checks. */
  #checkedOrigin: string | undefined;
  #checkedTarget: string | undefined;

  constructor(host: InboundHost) {
    this.#host = host;
    this.#id = host.id;
    this.#claims = new Claims(host);
  }

  /** The link whose frame is being read now (a transfer's objects wait on its connection). */
  get decodingLink(): Link | undefined {
    return this.#decodeLink;
  }

  /** `link` is gone: forget the names it added. */
  linkDown(link: Link): void {
    this.#claims.linkDown(link);
  }

  /** Read `frame`, which arrived on `link`. */
  frame(link: Link, frame: string): void {
    let start = 0;
    this.#decodeLink = link;
    try {
      for (;;) {
        const end = frame.indexOf(ENVELOPE_SEPARATOR, start);
        const text = end < 0 ? frame.slice(start) : frame.slice(start, end);
        if (text.length) this.#envelope(link, text);
        if (end < 0) break;
        start = end + 1;
      }
    } finally {
      this.#decodeLink = undefined;
    }
  }

  /** A direct traffic envelope: from the link's peer, for this node. */
  #direct(link: Link, kind: number, text: string): void {
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    const reader = this.#reader;
    if (!reader.parseDirect(text, tab < 0 ? text.length : tab))
      return this.#host.protocolError(link, 'malformed direct envelope header');
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    const { x, y } = reader.direct;
    const runtime = this.#host.runtime;
    if (kind === DIRECT_SEND) return runtime.inSend(x, link.peer, payload);
    if (kind === DIRECT_CALL) return runtime.inCall(x, link.peer, y, payload);
    return runtime.inReply(x, y as 0 | 1, payload);
  }

  /**
   * A short routed traffic envelope: read once; forwarded as received (hop digits rewritten) when
   * it is for another node, else handed to the runtime as a direct one would be, from its origin.
   */
  #shortRouted(link: Link, kind: number, text: string): void {
    const host = this.#host;
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    const reader = this.#reader;
    if (!reader.parseRouted(text, tab < 0 ? text.length : tab))
      return host.protocolError(link, 'malformed routed envelope header');
    const { n, o, h, hopEnd } = reader.routed;
    const { x, y } = reader.direct;
    // Ids are checked against the rule only when not already known: the link's peer and the
    // nodes routes lead to were checked when they were learned.
    // The ids of the last envelope that passed are not checked again (the reader hands out the
    // same strings for the same ids).
    const routes = host.table.routes;
    if (o !== this.#checkedOrigin) {
      if (!(o === link.peer || routes.has(o) || isValidNodeId(o)))
        return host.protocolError(link, 'malformed routed envelope header: bad origin node id');
      this.#checkedOrigin = o;
    }
    if (n !== this.#id) {
      if (n !== this.#checkedTarget) {
        if (!(routes.has(n) || isValidNodeId(n)))
          return host.protocolError(link, 'malformed routed envelope header: bad target node id');
        this.#checkedTarget = n;
      }
      return host.forwarder.forwardShort(link, kind, n, o, h, x, y, text, hopEnd);
    }
    if (o === this.#id)
      return host.protocolError(
        link,
        `envelope "${String.fromCharCode(kind)}" claims to come from this node`,
      );
    if (link.peer === o || !host.isMember(o)) host.table.learn(o, link);
    if (!host.table.reachable.has(o) && routes.has(o)) host.markUp(o);
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    const runtime = host.runtime;
    if (kind === ROUTED_SEND) return runtime.inSend(x, o, payload);
    if (kind === ROUTED_CALL) return runtime.inCall(x, o, y, payload);
    return runtime.inReply(x, y as 0 | 1, payload);
  }

  #envelope(link: Link, text: string): void {
    const kind = text.charCodeAt(0);
    if (isDirect(kind)) return this.#direct(link, kind, text);
    if (isShortRouted(kind)) return this.#shortRouted(link, kind, text);
    const host = this.#host;
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    const headText = tab < 0 ? text : text.slice(0, tab);
    const payload = tab < 0 ? undefined : text.slice(tab + 1);
    const reader = this.#reader;
    let raw: unknown;
    try {
      raw = reader.parseHeader(headText);
    } catch (err) {
      return host.protocolError(link, 'malformed envelope header', err);
    }
    // Where a canonical header's hop count is: forwarding rewrites just those digits.
    const hopAt = reader.hop.at;
    const hopEnd = reader.hop.end;
    let h = fastHeader(raw);
    if (h === undefined) {
      const parsed = EnvelopeHeader.safeParse(raw);
      if (!parsed.success) {
        const t = (raw as { t?: unknown } | null)?.t;
        return host.protocolError(
          link,
          typeof t === 'string'
            ? `invalid or unknown envelope "${t.slice(0, 20)}"`
            : 'invalid envelope',
          parsed.error.issues,
        );
      }
      h = parsed.data;
    }
    const r = routed(h);
    if (r !== undefined) {
      if (targetOf(r) !== this.#id)
        return host.forwarder.forward(
          link,
          r,
          payload,
          hopAt >= 0 ? text : undefined,
          hopAt,
          hopEnd,
        );
      const origin = originOf(r);
      // This node never sends itself envelopes over a link: one that claims to come from here is
      // forged (a link request "from" one of our actors would make us signal it ourselves).
      if (origin === this.#id)
        return host.protocolError(link, 'an envelope claims to come from this node');
      // Learn a route to the origin; bounded, since a peer may claim any origin it likes.
      // A member (lazy links) is reached directly when used, never through another node.
      if (link.peer === origin || !host.isMember(origin)) host.table.learn(origin, link);
      if (!host.table.reachable.has(origin) && host.table.routes.has(origin)) host.markUp(origin);
    }
    dispatchEnvelope(h, payload, this, link);
  }

  // Envelopes for this node's actors go to the runtime (those of links and monitors to its actor links).

  send(_: Link, actor: number, origin: string, payload: string | undefined, awaited: boolean) {
    const runtime = this.#host.runtime;
    return awaited
      ? runtime.inFlow(actor, origin, payload)
      : runtime.inSend(actor, origin, payload);
  }
  grant(_: Link, origin: string, bytes: number) {
    this.#host.runtime.inGrant(origin, bytes);
  }
  call(_: Link, actor: number, origin: string, callId: number, payload: string | undefined) {
    this.#host.runtime.inCall(actor, origin, callId, payload);
  }
  reply(_: Link, callId: number, ok: 0 | 1, payload: string | undefined) {
    this.#host.runtime.inReply(callId, ok, payload);
  }
  cancel(_: Link, actor: number, origin: string, callId: number) {
    this.#host.runtime.inCancel(actor, origin, callId);
  }
  exit(_: Link, actor: number, origin: string, from: number, viaLink: boolean, payload?: string) {
    this.#host.runtime.actorLinks.inExit(actor, origin, from, viaLink, payload);
  }
  link(_: Link, op: 'l' | 'u', actor: number, origin: string, from: number, e?: number) {
    if (op === 'l' && !this.#host.admit(origin, e)) return;
    this.#host.runtime.actorLinks.inLink(op, actor, origin, from);
  }
  monitor(_: Link, actor: number, origin: string, watcher: number, mid: string, e?: number) {
    if (!this.#host.admit(origin, e)) return;
    this.#host.runtime.actorLinks.inMonitor(actor, origin, watcher, mid);
  }
  demonitor(_: Link, actor: number, mid: string) {
    this.#host.runtime.actorLinks.inDemonitor(actor, mid);
  }
  down(_: Link, watcher: number, mid: string, origin: string, dead: number, payload?: string) {
    this.#host.runtime.actorLinks.inDown(watcher, mid, origin, dead, payload);
  }
  spawn(_: Link, request: SpawnRequest, e: number | undefined, payload: string | undefined) {
    // A spawn of a stale session is dropped: its caller's call is (or will be) NODE_DOWN.
    if (!this.#host.admit(request.origin, e)) return;
    this.#host.runtime.inSpawn(request, payload);
  }
  dropReport(_: Link, origin: string, target: string, count: number, reason: string) {
    // A relay dropped messages of ours: one dead letter with the count.
    const events = this.#host.events;
    if (!events.has('deadLetter')) return;
    const error = new TroupeError(
      reason === 'overflow' ? 'MAILBOX_FULL' : 'NODE_DOWN',
      `${origin} dropped ${count} message(s) from this node for ${target} (${reason})`,
    );
    events.emit('deadLetter', {
      to: target,
      reason: reason as 'overflow' | 'unreachable',
      error,
      count,
    });
  }

  // Link-layer envelopes.

  routeFlush(_: Link, origin: string, marker: number) {
    // Everything the sender routed to us the old way has arrived: answer on the shortest way.
    const table = this.#host.table;
    const back = table.direct.get(origin) ?? table.routes.get(origin);
    back?.enqueue(writeRouteFlush('ra', origin, this.#id, marker));
  }
  routeFlushed(_: Link, origin: string, marker: number) {
    this.#host.switches.end(origin, marker);
  }
  session(link: Link, n: number) {
    // The peer has lost its session with us since it last told us: it dropped state that we
    // still hold (monitors, links, calls across a link only it saw die). Settle it.
    const host = this.#host;
    const peer = link.peer;
    const current = host.table.direct.get(peer);
    // The link we were using is dead on the peer's side; this one is its only link to us.
    if (n > host.sessions.current(peer) && current !== undefined && current !== link)
      host.adopt(link, current);
    // A lower number needs no answer: our own `ss` on this link tells the peer.
    if (host.sessions.advance(peer, n)) host.runtime.settleSession(peer, 'noconnection');
  }
  sessionRoute(_: Link, origin: string, n: number) {
    this.#host.admit(origin, n);
  }
  nodeDown(link: Link, node: string) {
    const host = this.#host;
    // route(), not the table's routes: a leaf sends to nodes it has no route for up its only link.
    if (host.members.peekRoute(node) === link && !host.table.direct.has(node)) {
      host.table.routes.delete(node);
      if (host.rescue(node, 'noconnection', link)) return;
      host.nodeLost(node, 'noconnection');
      host.table.broadcast(writeNodeDown(node), link);
    } else if (host.switches.oldLink(node) === link) {
      // The route we are switching away from lost the node before it was flushed.
      host.switches.broken(node, link);
    }
  }
  sessionLost(link: Link, node: string) {
    const host = this.#host;
    if (
      node !== this.#id &&
      (host.members.peekRoute(node) === link || host.switches.oldLink(node) === link)
    )
      host.switches.broken(node, link);
  }
  registry(link: Link, op: 'ga' | 'gd', name: string, node: string, id: number) {
    this.#claims.claim(link, op, name, node, id);
  }
  members(link: Link, members: [string, string[]][]) {
    const host = this.#host;
    for (const [node, addrs] of members) {
      // A member (lazy links) is reached directly when used, never through gossip routes.
      if (node === this.#id || host.isMember(node)) continue;
      // The sender's direct peers are reachable through it until a shorter route is known.
      if (host.table.learn(node, link)) host.markUp(node);
      if (!addrs.length) continue;
      host.table.learnAddresses(node, addrs);
      host.autoDial(node);
    }
  }
}

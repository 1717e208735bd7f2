import type { RouteTable } from './route-table.ts';

/** What member links need of a link. */
export interface MemberLink {
  readonly peer: string;
  readonly state: string;
  enqueue(text: string, droppable?: boolean): boolean;
}

/** What member links need from their router and node. @internal */
export interface MembersHost<L extends MemberLink> {
  readonly table: RouteTable<L>;
  /** The route switches in progress (see core/route-switches.ts). */
  readonly switches: { oldLink(node: string): L | undefined };
  readonly options: { readonly maxLinkQueue: number };
  readonly connector: {
    /** Whether a lazy discovery reports `node` as a member. */
    isMember(node: string): boolean;
    /** The link to member `node`: the one being dialed, or a new dial. */
    lazyLink(node: string): L | undefined;
  };
  readonly runtime: { deadLetter(to: string, reason: 'overflow' | 'unreachable'): void };
  markUp(node: string): void;
  nodeLost(node: string, reason: string): void;
  sessionLost(node: string, reason: string): void;
}

/**
 * Lazy links (a part of the Router): the members a lazy discovery reports (NATS) are reachable
 * without a link, dialed when something is first sent to them; what is sent meanwhile is held
 * until that link is up, then sent, or dead-lettered if it fails. @internal
 */
export class MemberLinks<L extends MemberLink> {
  readonly #host: MembersHost<L>;
  /** Envelopes for a member held until the link dialed on first use is up. */
  #held = new Map<L, { node: string; texts: string[]; chars: number }>();

  constructor(host: MembersHost<L>) {
    this.#host = host;
  }

  /** The link envelopes for `node` leave on, if any; a member's link is dialed now on first use. */
  route(node: string): L | undefined {
    const host = this.#host;
    const link = host.table.routes.get(node);
    if (link !== undefined) return link;
    if (host.connector.isMember(node)) return host.connector.lazyLink(node);
    return host.table.route(node);
  }

  /** As {@link route}, without dialing a member. */
  peekRoute(node: string): L | undefined {
    const host = this.#host;
    return host.connector.isMember(node) ? host.table.routes.get(node) : this.route(node);
  }

  /** Whether `node` is this node, has a route, or is a member. */
  isReachable(node: string): boolean {
    return this.#host.table.isReachable(node) || this.#host.connector.isMember(node);
  }

  /** A lazy discovery reported member `node`: reachable, dialed on first use. */
  up(node: string): void {
    const { table, switches } = this.#host;
    const via = table.routes.get(node);
    // Learned through another node's gossip before its presence: reach it directly instead.
    if (via !== undefined && via.peer !== node && switches.oldLink(node) === undefined)
      table.routes.delete(node);
    this.#host.markUp(node);
  }

  /** Member `node` left: down, unless a direct link to it still stands. */
  down(node: string): void {
    const host = this.#host;
    if (host.table.direct.has(node)) return; // its link's heartbeats decide
    host.table.routes.delete(node);
    host.nodeLost(node, 'noconnection');
  }

  /** Put `text` on `link` (held while it is a member's link still in its handshake). */
  put(link: L, node: string, text: string, droppable: boolean): boolean {
    return link.state === 'handshake'
      ? this.#hold(link, node, text)
      : link.enqueue(text, droppable);
  }

  /** Hold `text` for the member a link being dialed leads to; false when over `maxLinkQueue`. */
  #hold(link: L, node: string, text: string): boolean {
    let held = this.#held.get(link);
    if (!held) this.#held.set(link, (held = { node, texts: [], chars: 0 }));
    if (held.chars + text.length > this.#host.options.maxLinkQueue) return false;
    held.texts.push(text);
    held.chars += text.length;
    return true;
  }

  /** A member's link is up or failed: send what waited for it, or settle it. */
  release(link: L): void {
    if (this.#held.size === 0) return;
    const held = this.#held.get(link);
    if (!held) return;
    this.#held.delete(link);
    const host = this.#host;
    const to =
      link.state === 'up' && link.peer === held.node ? host.table.direct.get(held.node) : undefined;
    if (to) {
      for (const t of held.texts)
        if (!to.enqueue(t)) host.runtime.deadLetter(held.node, 'overflow');
      return;
    }
    for (let i = 0; i < held.texts.length; i++) host.runtime.deadLetter(held.node, 'unreachable');
    // What was sent to it (calls, monitors, links) ends as if its link had died.
    host.sessionLost(held.node, 'noconnection');
  }
}

import { claimedNode, writeMembers } from './envelope-write.ts';

/** What the route table needs of a link: where its envelopes go. */
export interface RoutedLink {
  enqueue(text: string): boolean;
}

/**
 * The routes of one node (a part of its Router): its direct links by peer, the link envelopes
 * for each known node leave on, the nodes it counts as reachable, and the listen addresses it
 * knows. Everything a peer can make it hold is bounded by `maxRoutes`. @internal
 */
export class RouteTable<L extends RoutedLink> {
  /** The direct link to each peer. */
  readonly direct = new Map<string, L>();
  /** The link envelopes for each known node leave on (direct or through a peer). */
  readonly routes = new Map<string, L>();
  /** The nodes reported up (`nodeUp`) and not since down. */
  readonly reachable = new Set<string>();
  /** Listen addresses by node. */
  readonly addresses = new Map<string, string[]>();
  readonly #id: string;
  readonly #maxRoutes: number;

  constructor(id: string, maxRoutes: number) {
    this.#id = id;
    this.#maxRoutes = maxRoutes;
  }

  /** The link envelopes for `node` leave on, if any. */
  route(node: string): L | undefined {
    const link = this.routes.get(node);
    if (link !== undefined || this.direct.size !== 1) return link;
    // A leaf (a worker behind its tab, a page behind its relay) sends what it has no route for
    // up its only link: the node above knows more of the cluster.
    return this.direct.values().next().value;
  }

  /** Whether `node` is this node or has a route. */
  isReachable(node: string): boolean {
    return node === this.#id || this.routes.has(node);
  }

  /** Route `node` through `link` unless a route is known or the table is full; whether it did. */
  learn(node: string, link: L): boolean {
    if (this.routes.has(node) || this.routes.size >= this.#maxRoutes) return false;
    this.routes.set(node, link);
    return true;
  }

  /** Remember `addrs` for `node`, within the bound on what peers can make this node keep. */
  learnAddresses(node: string, addrs: string[]): void {
    if (this.addresses.size < this.#maxRoutes || this.addresses.has(node))
      this.addresses.set(node, addrs);
  }

  /** Remember `addrs` for `node` only if none are known (addresses carried by a ref). */
  learnFirstAddresses(node: string, addrs: string[]): void {
    if (!this.addresses.has(node) && this.addresses.size < this.#maxRoutes)
      this.addresses.set(node, addrs);
  }

  /** Route through `to` everything routed through `from`. */
  repoint(from: L, to: L): void {
    for (const [n, l] of this.routes) if (l === from) this.routes.set(n, to);
  }

  /** Drop every route through `link`; the nodes they led to. */
  dropVia(link: L): string[] {
    const lost: string[] = [];
    for (const [n, l] of this.routes) {
      if (l === link) {
        this.routes.delete(n);
        lost.push(n);
      }
    }
    return lost;
  }

  /** Send `text` on every direct link but `except`. */
  broadcast(text: string, except?: unknown): void {
    for (const l of this.direct.values()) if (l !== except) l.enqueue(text);
  }
}

/**
 * Put a registry envelope on `link`. A name claim for a node the peer may not know (one this
 * node reaches through another link: a worker behind a page behind a relay) goes after a
 * membership entry for that node, so the peer learns the route before the claim, which it
 * accepts only for a node reached through the link it came on (core/router-inbound.ts).
 */
export function sendRegistry<L extends RoutedLink & { readonly peer: string }>(
  table: RouteTable<L>,
  id: string,
  link: L,
  text: string,
): void {
  const node = claimedNode(text);
  if (node !== undefined && node !== id && node !== link.peer) {
    const via = table.routes.get(node);
    if (via !== undefined) {
      if (via === link) return; // split horizon: the peer is this node's route to it
      link.enqueue(writeMembers([[node, table.addresses.get(node) ?? []]]));
    }
  }
  link.enqueue(text);
}

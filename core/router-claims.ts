import { writeRegistry } from './envelope-write.ts';
import type { Link } from './link.ts';
import type { Registry } from './registry.ts';
import type { RouteTable } from './route-table.ts';

/** Most registry names a node accepts from its peers (its own actors may always register). */
const MAX_NAMES = 100_000;
/** Most registry names one peer may add (names of its own actors and of nodes behind it). */
export const MAX_NAMES_PER_PEER = 50_000;
/**
 * Most nodes one peer may introduce by registry claims: names of nodes this node has no route to,
 * which teach a route through the peer (docs/security.md, "Registry").
 */
export const MAX_NODES_INTRODUCED_PER_PEER = 1000;

/** What registry claims need from their router. @internal */
export interface ClaimsHost {
  readonly id: string;
  readonly table: RouteTable<Link>;
  readonly registry: Registry;
  /** Lazy links: `peekRoute` is as `route`, without dialing a member. */
  readonly members: { peekRoute(node: string): Link | undefined };
  protocolError(link: Link, message: string, cause?: unknown): void;
}

/**
 * Registry claims from peers (a part of the Router's inbound side): a peer's `ga`/`gd` for a
 * name, checked against who may speak for the name's node and against the per-peer caps
 * (docs/security.md, "Registry"), then applied to the registry. @internal
 */
export class Claims {
  readonly #host: ClaimsHost;
  /** Names each peer added to the registry (capped at {@link MAX_NAMES_PER_PEER}). */
  readonly #namesBy = new Map<Link, number>();
  /** Unknown nodes each peer introduced by registry claims (capped at {@link MAX_NODES_INTRODUCED_PER_PEER}). */
  readonly #introducedBy = new Map<Link, number>();

  constructor(host: ClaimsHost) {
    this.#host = host;
  }

  /** `link` is gone: forget what it added. */
  linkDown(link: Link): void {
    this.#namesBy.delete(link);
    this.#introducedBy.delete(link);
  }

  /** A peer's registry add (`ga`) or delete (`gd`) of `name` for actor `id` on `node`. */
  claim(link: Link, op: 'ga' | 'gd', name: string, node: string, id: number): void {
    if (node === this.#host.id) return this.#ownNameClaim(op, name, id, link);
    const host = this.#host;
    // A peer speaks for its own actors and for nodes reached through it. A copy of a claim
    // about a node reached through another link is a flood arriving by a longer path:
    // the owner's path carries it too, so it is ignored (docs/security.md, "Registry").
    const via = host.table.routes.get(node);
    if (node !== link.peer && via !== undefined && via !== link) return;
    // A claim about a node this node has no route to introduces that node: the name teaches a
    // route through the peer (transitive routing, as a ref does). One peer introduces at most
    // MAX_NODES_INTRODUCED_PER_PEER nodes so; past it, a claim about another unknown node (a
    // flood of names for invented nodes) is refused with an event. A leaf routes everything up
    // its only link and takes what that link says. (A node that relays a claim sends a
    // membership entry for its node first: sendRegistry in core/route-table.ts.)
    if (node !== link.peer && host.members.peekRoute(node) !== link) {
      if (op === 'gd') return;
      const introduced = this.#introducedBy.get(link) ?? 0;
      if (introduced >= MAX_NODES_INTRODUCED_PER_PEER)
        return host.protocolError(
          link,
          `${link.peer} introduced ${MAX_NODES_INTRODUCED_PER_PEER} nodes this node has no route to (the most one peer may): the name "${name.slice(0, 40)}" for node "${node.slice(0, 40)}" not added`,
        );
      this.#introducedBy.set(link, introduced + 1);
    }
    const registry = host.registry;
    if (op === 'ga' && !registry.get(name)) {
      if (registry.size >= MAX_NAMES)
        return host.protocolError(
          link,
          `registry full (${MAX_NAMES} names): "${name.slice(0, 40)}" not added`,
        );
      const mine = this.#namesBy.get(link) ?? 0;
      if (mine >= MAX_NAMES_PER_PEER) {
        return host.protocolError(
          link,
          `${link.peer} added ${MAX_NAMES_PER_PEER} names (the most one peer may): "${name.slice(0, 40)}" not added`,
        );
      }
      registry.apply(op, name, node, id, link);
      if (registry.get(name)) this.#namesBy.set(link, mine + 1);
      return;
    }
    registry.apply(op, name, node, id, link);
  }

  /**
   * A peer's registry add or delete about one of this node's own actors. This node alone decides
   * its actors' names: such a claim is stale (flooding raced an unregister) or forged, so it is
   * not applied; the peer is corrected with what this node holds.
   */
  #ownNameClaim(op: 'ga' | 'gd', name: string, id: number, link: Link): void {
    const cur = this.#host.registry.get(name);
    const ours = cur !== undefined && cur.node === this.#host.id && cur.id === id;
    if (op === 'ga' && !ours) link.enqueue(writeRegistry('gd', name, this.#host.id, id));
    if (op === 'gd' && ours) link.enqueue(writeRegistry('ga', name, this.#host.id, id));
  }
}

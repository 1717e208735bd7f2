/**
 * Sessions between this node and each peer (docs/protocol.md, "Sessions").
 *
 * Monitors, links and calls that cross the wire are held on both ends. When a node loses its
 * session with a peer — the link died, the relay in between lost the peer, a route switch could
 * not confirm that the old route delivered — it settles its side of all of them at once
 * (`noconnection`). The peer may not have seen any loss (a link dying on one side only, a path
 * through a relay broken on one side only), so it must learn of it, or its side would be
 * orphaned: a monitor that never fires, a link that never breaks.
 *
 * Each node therefore counts, per peer, how many times it lost its session with that peer
 * (`mine`), and remembers the highest such count the peer reported about it (`theirs`). Every
 * envelope that creates state on the other end (`m`, `l`, `sp`) carries both numbers, and so do
 * the session envelopes (`ss` on a new link, `sr` routed when a lost peer becomes reachable
 * again). Each piece of state a node holds about a peer is tagged with the peer's count when it
 * was made; it is settled when this node loses the session (all of it), or when the peer's count
 * moves past its tag (the peer lost the session since, and settled its own side). The tags make
 * the rule independent of the order in which envelopes of old and new sessions arrive.
 */

/** What to do with a state-creating envelope, judged by the session counts it carries. */
export type Admission =
  /** Current: apply it. */
  | 'ok'
  /** The sender lost the session after sending it; it has settled its side already: drop it. */
  | 'sender-stale'
  /** This node lost the session after the sender last heard: drop it; tell the sender (`sr`). */
  | 'receiver-stale';

export class SessionBook {
  #mine = new Map<string, number>();
  #theirs = new Map<string, number>();
  #life = new Map<string, string>();
  #tags = new WeakMap<object, number>();

  /** How many times this node lost its session with `peer`. */
  mine(peer: string): number {
    return this.#mine.get(peer) ?? 0;
  }

  /** The highest count `peer` reported of its losses of its session with this node. */
  theirs(peer: string): number {
    return this.#theirs.get(peer) ?? 0;
  }

  /** This node lost its session with `peer`. */
  lost(peer: string): void {
    this.#mine.set(peer, this.mine(peer) + 1);
  }

  /** Counts refer to one life of a peer: a new incarnation starts from zero on both sides. */
  life(peer: string, incarnation: string): void {
    if (this.#life.get(peer) === incarnation) return;
    this.#life.set(peer, incarnation);
    this.#mine.delete(peer);
    this.#theirs.delete(peer);
  }

  /** Forget both counts of `peer` (its old life is gone). */
  reset(peer: string): void {
    this.#mine.delete(peer);
    this.#theirs.delete(peer);
  }

  /**
   * The peer reports `count` losses: true when that is news (state tagged below it must now be
   * settled).
   */
  advance(peer: string, count: number): boolean {
    if (count <= this.theirs(peer)) return false;
    this.#theirs.set(peer, count);
    return true;
  }

  /**
   * Judge an envelope from `peer` carrying its count `e` and its copy `v` of ours (both absent
   * from senders that predate sessions: always admitted). Call {@link advance} with `e` first.
   */
  admit(peer: string, e: number | undefined, v: number | undefined): Admission {
    if (e === undefined || v === undefined) return 'ok';
    if (e < this.theirs(peer)) return 'sender-stale';
    if (v < this.mine(peer)) return 'receiver-stale';
    return 'ok';
  }

  /** Tag `state` (a watcher or link partner ref) with `peer`'s count now. */
  tag(state: object, peer: string): void {
    this.#tags.set(state, this.theirs(peer));
  }

  /** Tag `state` with a count read earlier (state set up on the answer to a request). */
  tagWith(state: object, count: number): void {
    this.#tags.set(state, count);
  }

  /** The tag of `state`; untagged state counts as the first session. */
  tagOf(state: object): number {
    return this.#tags.get(state) ?? 0;
  }
}

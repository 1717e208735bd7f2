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
 * So each pair of nodes numbers its sessions. Each node keeps, per peer, the number of the
 * session it is in; it starts at 0 (per life of the peer) and a node that loses the session moves
 * to the next number. Envelopes that create state on the other end (`m`, `l`, `sp`) carry the
 * sender's number, and so do the session envelopes (`ss`, first on every link; `sr`, routed, when
 * a node that lost a peer finds it again). A receiver that sees a higher number than its own
 * learns that the sender ended the session it is in: it settles its side too, and moves to that
 * number. An envelope with a lower number comes from a session the receiver has ended: it
 * creates nothing, and the receiver answers with its number (`sr`), so the sender settles too.
 * When both sides lose the session (a relay restart), both move to the same number, and what
 * either creates afterwards belongs to the new session on both.
 */

export class SessionBook {
  #session = new Map<string, number>();
  #life = new Map<string, string>();

  /** The number of the session with `peer` this node is in. */
  current(peer: string): number {
    return this.#session.get(peer) ?? 0;
  }

  /** This node lost its session with `peer`: the next one begins. */
  lost(peer: string): void {
    this.#session.set(peer, this.current(peer) + 1);
  }

  /** `peer` is in session `n`: true when that is a later one than ours (we move to it). */
  advance(peer: string, n: number): boolean {
    if (n <= this.current(peer)) return false;
    this.#session.set(peer, n);
    return true;
  }

  /** Session numbers refer to one life of a peer: a new incarnation starts again from 0. */
  life(peer: string, incarnation: string): void {
    if (this.#life.get(peer) === incarnation) return;
    this.#life.set(peer, incarnation);
    this.#session.delete(peer);
  }

  /** Forget the session number of `peer` (its old life is gone). */
  reset(peer: string): void {
    this.#session.delete(peer);
  }
}

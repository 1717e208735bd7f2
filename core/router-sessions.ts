import { writeSessionLost, writeSessionRoute } from './envelope-write.ts';
import type { RouteTable } from './route-table.ts';
import type { SessionBook } from './session.ts';

/** What sessions need of a link. */
export interface SessionLink {
  readonly peer: string;
  enqueue(text: string): boolean;
}

/** What the session keeper needs from its router and node. @internal */
export interface SessionsHost<L extends SessionLink> {
  readonly id: string;
  readonly sessions: SessionBook;
  readonly table: RouteTable<L>;
  readonly runtime: { settleSession(node: string, reason: string): void };
  route(node: string): L | undefined;
  emit(node: string, header: string, payload: undefined, what: { to: string }): unknown;
}

/**
 * This node's sessions with other nodes (a part of the Router; core/session.ts): losing one,
 * telling a peer which one is ours, and reading the number an envelope carries. @internal
 */
export class SessionKeeper<L extends SessionLink> {
  readonly #host: SessionsHost<L>;

  constructor(host: SessionsHost<L>) {
    this.#host = host;
  }

  /** This node lost its session with `node`: settle it; the next one begins. */
  lost(node: string, reason: string): void {
    this.#host.sessions.lost(node);
    this.#host.runtime.settleSession(node, reason);
  }

  /**
   * Envelopes to `node` may have been lost (see RouteSwitches.broken): our session with `node`
   * is lost (settled here, told to `node` with `sr`), and so is that of every node routing to
   * `node` through us, since we may have forwarded its envelopes the old way: they hear `sl`.
   */
  routeLost(node: string, from: L | undefined): void {
    this.lost(node, 'route lost');
    const text = writeSessionLost(node);
    for (const l of this.#host.table.direct.values())
      if (l !== from && l.peer !== node) l.enqueue(text);
    this.tell(node);
  }

  /**
   * The session number `n` an envelope from `peer` carries: a later session than ours means the
   * peer ended ours (settle our side, move to it); an earlier one means we ended the peer's
   * (tell it, `sr`). Whether state the envelope creates may be kept.
   */
  admit(peer: string, n: number | undefined): boolean {
    if (n === undefined) return true;
    const host = this.#host;
    const mine = host.sessions.current(peer);
    if (n > mine) {
      host.sessions.advance(peer, n);
      host.runtime.settleSession(peer, 'noconnection');
    } else if (n < mine) {
      this.tell(peer);
      return false;
    }
    return true;
  }

  /** Tell `peer` the number of our session with it (routed `sr`). */
  tell(peer: string): void {
    const host = this.#host;
    if (!host.route(peer)) return;
    const text = writeSessionRoute(peer, host.id, host.sessions.current(peer));
    host.emit(peer, text, undefined, { to: peer });
  }
}

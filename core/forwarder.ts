import type { Clock } from './clock.ts';
import {
  addresseeOf,
  awaitedCallOf,
  hopsOf,
  isDropReport,
  isDroppable,
  monitorRequestOf,
  nextHopEnvelope,
  originOf,
  targetOf,
} from './envelope-read.ts';
import { nextHopText } from './envelope.ts';
import { writeDropReport } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import type { DeadLetterReason, NodeEvents } from './node-options.ts';
import type { RoutedHeader } from './protocol.ts';

/** A relay reports the envelopes it dropped to their senders at most this often (ms) per sender, target and reason. */
const DROP_REPORT_MS = 250;

/** What forwarding needs of a link. */
export interface ForwardLink {
  readonly peer: string;
  enqueue(text: string, droppable?: boolean): boolean;
}

/** What the forwarder needs from its router and node. @internal */
export interface ForwardHost<L extends ForwardLink> {
  readonly id: string;
  readonly clock: Clock;
  readonly events: Emitter<NodeEvents>;
  readonly hopLimit: number;
  /** Most drop counts kept between two reports. */
  readonly maxDrops: number;
  route(node: string): L | undefined;
  /** Learn a route to `node` through `link` (bounded). */
  learnRoute(node: string, link: L): void;
  /** Hold `text` for `node` while its route switches; false if it may go now. */
  hold(node: string, text: string): boolean;
  /** Put `text` for `node` on `link` (held while a member's link is in its handshake); false if refused. */
  put(link: L, node: string, text: string, droppable: boolean): boolean;
  congested(link: L): TroupeError;
  replyError(node: string, callId: number, error: TroupeError): void;
  /** DOWN `noconnection` for monitor `mid` of actor `watcher` of `node` on `target`'s actor `id`. */
  downUnreachable(node: string, watcher: number, mid: string, target: string, id: number): void;
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
}

/**
 * Forwarding (a part of the Router): envelopes for other nodes leave on the route to their
 * target, with the hop count raised; what cannot go on is answered (calls, spawns, monitors) or
 * counted and reported to its sender (`dr`). @internal
 */
export class Forwarder<L extends ForwardLink> {
  readonly #host: ForwardHost<L>;
  /** Drops of others' envelopes not yet reported to their senders, by `origin\ntarget\nreason`. */
  #drops = new Map<string, number>();
  #dropTimer: unknown;

  constructor(host: ForwardHost<L>) {
    this.#host = host;
  }

  /**
   * Forward an envelope for another node. `received` (with its hop digits at `hopAt..hopEnd`) is
   * the envelope as it arrived when its header was canonical: it leaves with only the hop count
   * rewritten, neither its header nor its payload encoded again.
   */
  forward(
    from: L,
    h: RoutedHeader,
    payload: string | undefined,
    received?: string,
    hopAt = -1,
    hopEnd = 0,
  ): void {
    const host = this.#host;
    const target = targetOf(h);
    const origin = originOf(h);
    const hops = hopsOf(h);
    const callId = awaitedCallOf(h);
    if (hops + 1 > host.hopLimit) {
      host.events.emit('protocolError', {
        error: new TroupeError(
          'HOP_LIMIT',
          `envelope for ${target} exceeded ${host.hopLimit} hops`,
        ),
        peer: from.peer,
      });
      if (callId !== 0)
        host.replyError(
          origin,
          callId,
          new TroupeError('HOP_LIMIT', `no route to ${target} within ${host.hopLimit} hops`),
        );
      return;
    }
    if (origin !== host.id) host.learnRoute(origin, from);
    const link = host.route(target);
    if (!link || link === from) {
      const monitor = monitorRequestOf(h);
      if (callId !== 0)
        host.replyError(
          origin,
          callId,
          new TroupeError('NODE_DOWN', `node ${target} is not reachable from ${host.id}`),
        );
      else if (monitor)
        host.downUnreachable(origin, monitor.watcher, monitor.monitor, target, monitor.actor);
      else {
        host.deadLetter(addresseeOf(h), 'unreachable');
        this.#noteDrop(h, 'unreachable');
      }
      return;
    }
    // Relays forward the payload bytes untouched: only the small header is rewritten. A relay
    // in front of a slow peer bounds what it holds: sends, calls and spawns past maxLinkQueue
    // are dropped (calls and spawns get a MAILBOX_FULL reply).
    // Awaited sends are bounded by their end-to-end credit instead: never dropped here.
    const text =
      received !== undefined
        ? nextHopText(received, hopAt, hopEnd, hops)
        : nextHopEnvelope(h, payload);
    if (host.hold(target, text)) return;
    if (!host.put(link, target, text, isDroppable(h))) {
      const error = host.congested(link);
      if (callId !== 0) host.replyError(origin, callId, error);
      else {
        host.deadLetter(addresseeOf(h), 'overflow', undefined, error);
        this.#noteDrop(h, 'overflow');
      }
    }
  }

  /** Shutdown: forget the drops not yet reported. */
  stop(): void {
    this.#host.clock.clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    this.#drops.clear();
  }

  /**
   * Count an envelope of another node's that this node dropped while forwarding it; the counts
   * go to their senders (`dr`), at most once per sender, target and reason every
   * {@link DROP_REPORT_MS} (a dropped report is not reported: it would be a loop).
   */
  #noteDrop(h: RoutedHeader, reason: 'overflow' | 'unreachable'): void {
    const origin = originOf(h);
    if (isDropReport(h) || origin === this.#host.id) return;
    const key = `${origin}\n${targetOf(h)}\n${reason}`;
    if (this.#drops.size >= this.#host.maxDrops && !this.#drops.has(key)) return;
    this.#drops.set(key, (this.#drops.get(key) ?? 0) + 1);
    this.#dropTimer ??= this.#host.clock.setTimeout(this.#reportDrops, DROP_REPORT_MS);
  }

  #reportDrops = (): void => {
    this.#dropTimer = undefined;
    const drops = this.#drops;
    this.#drops = new Map();
    for (const [key, k] of drops) {
      const [origin, target, r] = key.split('\n');
      const link = this.#host.route(origin);
      if (!link) continue;
      link.enqueue(writeDropReport(origin, this.#host.id, target, k, r));
    }
  };
}

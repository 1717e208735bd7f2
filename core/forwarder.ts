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
import { EnvelopeReader, nextHopText, ROUTED_CALL, ROUTED_REPLY, ROUTED_SEND } from './envelope.ts';
import { longRouted, writeDropReport } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import type { DeadLetterReason, NodeEvents } from './node-options.ts';
import type { RoutedHeader } from './protocol.ts';

/** A relay reports the envelopes it dropped to their senders at most this often (ms) per sender, target and reason. */
const DROP_REPORT_MS = 250;

/** What forwarding needs of a link. */
export interface ForwardLink {
  readonly peer: string;
  /** Whether the peer reads short routed headers (else they leave in JSON). */
  readonly shortRouted: boolean;
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
  readonly #reader = new EnvelopeReader();
  /** Heads of forwarded short routed envelopes, by kind and hop count (see {@link #nextHop}). */
  readonly #heads: string[] = [];

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
    const target = targetOf(h);
    const hops = hopsOf(h);
    const link = this.#next(from, target, originOf(h), hops);
    if (link === undefined) return this.#undeliverable(from, h, hops);
    // Relays forward the payload bytes untouched: only the small header is rewritten.
    const text =
      received !== undefined
        ? nextHopText(received, hopAt, hopEnd, hops)
        : nextHopEnvelope(h, payload);
    this.#put(link, target, text, h);
  }

  /**
   * Forward a short routed envelope (`text`, as received; see `ROUTED_SEND` in
   * core/envelope.ts) of `kind` from `origin` for `target`, with `hops` hops so far (its digits
   * end at `hopEnd`) and the numbers `x`, `y`: read once by the caller, it leaves with only the
   * hop digits rewritten, or in JSON on a link whose peer does not read the short form.
   */
  forwardShort(
    from: L,
    kind: number,
    target: string,
    origin: string,
    hops: number,
    x: number,
    y: number,
    text: string,
    hopEnd: number,
  ): void {
    const link = this.#next(from, target, origin, hops);
    if (link === undefined)
      return this.#undeliverable(from, shortHeader(kind, target, origin, hops, x, y), hops);
    const next = this.#nextHop(text, hopEnd, hops);
    const out = link.shortRouted ? next : (longRouted(this.#reader, next) ?? next);
    // Sends (never awaited in this form) and calls may be dropped when the next link is full.
    const droppable = kind !== ROUTED_REPLY;
    if (this.#host.hold(target, out)) return;
    if (!this.#host.put(link, target, out, droppable))
      this.#congested(link, shortHeader(kind, target, origin, hops, x, y));
  }

  /** A short routed envelope's text with its hop count (digits at 1..`hopEnd`) raised by one. */
  #nextHop(text: string, hopEnd: number, hops: number): string {
    const kind = text.charCodeAt(0);
    const at = (kind === ROUTED_SEND ? 0 : kind === ROUTED_CALL ? 257 : 514) + hops + 1;
    // The new head (kind letter and hop count) is one of 3 x 257: made once, then reused.
    const head = (this.#heads[at] ??= text[0] + (hops + 1));
    return head + text.slice(hopEnd);
  }

  /**
   * The link an envelope from `origin` for `target` with `hops` hops so far leaves on, learning a
   * route to `origin` through `from`; undefined when it cannot go on (past the hop limit, or no
   * route but back where it came from): the caller reports it.
   */
  #next(from: L, target: string, origin: string, hops: number): L | undefined {
    const host = this.#host;
    if (hops + 1 > host.hopLimit) return undefined;
    if (origin !== host.id) host.learnRoute(origin, from);
    const link = host.route(target);
    return link === from ? undefined : link;
  }

  /** Report an envelope that {@link #next} found no way on for. */
  #undeliverable(from: L, h: RoutedHeader, hops: number): void {
    const host = this.#host;
    const target = targetOf(h);
    const origin = originOf(h);
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
  }

  /**
   * Put `text` (envelope `h`) for `target` on `link`. A relay in front of a slow peer bounds what
   * it holds: sends, calls and spawns past maxLinkQueue are dropped (calls and spawns get a
   * MAILBOX_FULL reply). Awaited sends are bounded by their end-to-end credit instead: never
   * dropped here.
   */
  #put(link: L, target: string, text: string, h: RoutedHeader): void {
    if (this.#host.hold(target, text)) return;
    if (!this.#host.put(link, target, text, isDroppable(h))) this.#congested(link, h);
  }

  #congested(link: L, h: RoutedHeader): void {
    const host = this.#host;
    const error = host.congested(link);
    const callId = awaitedCallOf(h);
    if (callId !== 0) host.replyError(originOf(h), callId, error);
    else {
      host.deadLetter(addresseeOf(h), 'overflow', undefined, error);
      this.#noteDrop(h, 'overflow');
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

/** The header a short routed envelope stands for (built only to report one that went no further). */
function shortHeader(
  kind: number,
  n: string,
  o: string,
  h: number,
  x: number,
  y: number,
): RoutedHeader {
  if (kind === ROUTED_SEND) return { t: 's', n, o, h, a: x };
  if (kind === ROUTED_CALL) return { t: 'c', n, o, h, a: x, c: y };
  return { t: 'r', n, o, h, c: x, k: y === 1 ? 1 : 0 };
}

/**
 * The outbound side of a link: its two lanes, batching, chunking, the flow-control window and
 * the accounting of what the peer has not confirmed (docs/protocol.md, "Flow control", "Lanes
 * and chunks", "Accounting").
 */
import type { Clock } from './clock.ts';
import { Inflight } from './link-accounting.ts';
import { isCall, laneOf, OutLane, PIECE_CHARS } from './link-lanes.ts';
import type { LinkSettings } from './link-owner.ts';
import type { Connection } from './transport.ts';

/**
 * A settled promise whose `then` queues the flush: cheaper than `queueMicrotask`, which Node wraps
 * in an async resource per call (about 100 ns against 36). Never reassigned.
 */
const RESOLVED: Promise<undefined> = Promise.resolve(undefined);
/** While holding envelopes, check the backlog this often (ms) in case the transport has no `ondrain`. */
const DRAIN_POLL_MS = 10;
/**
 * Largest frame (chars) made by batching several envelopes (a single larger envelope still goes
 * alone, up to `maxFrameSize`, or in pieces). Small frames keep a slow link's heartbeats flowing:
 * a peer only hears from us when a whole frame has arrived, so a link must carry one batch within
 * the heartbeat timeout (64 Ki in 2.5 s: about 26 KB/s). Transports still write a tick's frames
 * at once.
 */
const MAX_BATCH = 64 * 1024;
/** The heartbeat envelope: it does not make priority traffic active. */
const HEARTBEAT = '{"t":"hb"}';
/**
 * The bulk lane's share of `highWaterMark` while priority traffic is active on the link (see
 * {@link Outbound}). Whatever bulk is in flight sits ahead of a call in the stream and the peer
 * handles it first: a call under a flood waits for about this many characters to be read and
 * handled (measured: at half of 1 MiB, call p50 4–9 ms under a 1 MB-send flood; at an eighth,
 * 0.5–1.3 ms). The peer acks every sixteenth of our window (core/link-accounting.ts), twice per
 * such share, so the bulk lane never waits for a poll.
 */
export const BULK_SHARE = 1 / 8;
/**
 * The bulk lane's share while no priority traffic is active: bulk runs well ahead of the
 * transport, so a one-way flow (a bulk transfer, a stream of small sends) does not run dry
 * waiting for acks, and an eighth of the window stays free for the first call that comes.
 */
export const BULK_SHARE_QUIET = 7 / 8;
/**
 * Priority traffic stays active this long after the peer acknowledged the last priority frame
 * (or, to a peer that does not ack, after it was written): long enough for a caller that makes
 * one call after another to get its reply and send the next call, short enough that a one-way
 * flow started by a call runs at the full share almost at once.
 */
export const PRIORITY_ACTIVE_MS = 20;

/**
 * The bulk lane's mark while priority traffic is quiet: {@link BULK_SHARE_QUIET} of
 * `highWaterMark` less one batch, so that after the last bulk frame written below it the backlog
 * is still under seven eighths and a call is written at once; never below {@link BULK_SHARE}.
 */
function quietMark(high: number): number {
  return Math.max(high * BULK_SHARE, high * BULK_SHARE_QUIET - MAX_BATCH);
}

/** What the outbound side needs from its link. */
export interface OutboundHost {
  readonly conn: Connection;
  readonly clock: Clock;
  readonly settings: LinkSettings;
  /** The peer's node id. */
  readonly peer: string;
  /** Whether frames may be written (the link is up and has not stalled). */
  writable(): boolean;
  /** The queues passed `maxLinkHeld` (`held` chars): the link must stall, once routing is done. */
  overfull(held: number): void;
  /** A frame was written. */
  wrote(): void;
}

/**
 * Envelopes wait in the lanes (not written) while the backlog — the transport's
 * `bufferedAmount` or, with a peer that acks, the characters written but not acknowledged — is
 * above the lane's mark: `highWaterMark` for the priority lane; for bulk an eighth of it while
 * priority traffic is active (a priority frame not yet acknowledged, or acknowledged less than
 * {@link PRIORITY_ACTIVE_MS} ago), seven eighths otherwise. So bulk never fills the window a call
 * needs, a call made while calls are flowing waits behind at most an eighth of the window of
 * bulk, and a one-way flow keeps the transport busy. Droppable envelopes are refused once the
 * lanes hold `maxLinkQueue` characters.
 */
export class Outbound {
  /** The peer's window from its hello (`fc`): it acks what it receives. 0: no acks either way. */
  peerWindow = 0;
  /** Whether the peer joins chunked envelopes (its hello had `ch`): then long ones are cut. */
  peerChunks = false;
  /** Whether envelopes are held because the backlog is above their lane's mark. */
  holding = false;
  /** While holding: when the peer last took something (an ack, a drained transport) or holding began. */
  progressAt = 0;
  /** Priority (calls, replies, control) and bulk (sends, exit and DOWN signals). */
  readonly #lanes = [new OutLane(0), new OutLane(1)] as const;
  // Frames written and not yet acknowledged, with their envelopes kept only when the peer acks
  // (peerWindow > 0); bounded by the high-water mark (the link holds above it).
  readonly #inflight = new Inflight();
  readonly #host: OutboundHost;
  #flushScheduled = false;
  #pollTimer: unknown;
  /** The transport's bufferedAmount when last looked at while holding. */
  #lastBuffered = 0;
  /** Characters written when the last priority frame (other than a lone heartbeat) was. */
  #priorityEnd = 0;
  /** When that frame was written or acknowledged; see {@link PRIORITY_ACTIVE_MS}. */
  #priorityAt = Number.NEGATIVE_INFINITY;

  constructor(host: OutboundHost) {
    this.#host = host;
  }

  /** See `Link.enqueue`. */
  enqueue(text: string, droppable: boolean): boolean {
    const size = text.length + 1;
    const [hi, lo] = this.#lanes;
    const held = hi.chars + lo.chars;
    const { maxLinkQueue, maxLinkHeld } = this.#host.settings;
    if (droppable && held + size > maxLinkQueue && held > 0) return false;
    const lane =
      laneOf(text) === 1 || (isCall(text) && lo.holdsFor(text, this.#host.peer)) ? lo : hi;
    lane.push(text);
    if (held + size > maxLinkHeld) this.#host.overfull(held + size);
    if (!this.#flushScheduled && (!this.holding || lane === hi)) {
      this.#flushScheduled = true;
      RESOLVED.then(this.flush);
    }
    return true;
  }

  /**
   * Write now what the lanes may write (what the next microtask would), then have the
   * connection post it with the objects staged for a transfer list: a send with a transfer list
   * returns with its buffers detached (see `Connection.postStaged`).
   */
  postNow(): void {
    if (!this.holding) this.flush();
    this.#host.conn.postStaged?.();
  }

  /** See `Link.backlog`. */
  get backlog(): number {
    const buffered = this.#host.conn.bufferedAmount ?? 0;
    const unacked = this.peerWindow > 0 ? this.#inflight.unacked : 0;
    return unacked > buffered ? unacked : buffered;
  }

  /** Characters of envelopes queued and not yet (wholly) written. */
  get queued(): number {
    return this.#lanes[0].chars + this.#lanes[1].chars;
  }

  /** The transport drained, the peer acked, or the poll fired: write what the backlog allows. */
  resume = (): void => {
    if (!this.holding || !this.#host.writable()) return;
    const buffered = this.#host.conn.bufferedAmount ?? 0;
    if (buffered < this.#lastBuffered) this.progressAt = this.#host.clock.now();
    this.#lastBuffered = buffered;
    this.flush();
  };

  /**
   * Write what is queued: the priority lane while the backlog is at most `highWaterMark`, then
   * the bulk lane while it is at most {@link BULK_SHARE} of that ({@link BULK_SHARE_QUIET} while no
   * priority traffic is active), in frames of at most `maxFrameSize`
   * ({@link MAX_BATCH} chars when batching) and, to a peer that joins chunks, envelopes over
   * {@link PIECE_CHARS} in pieces. The rest is held until the transport drains or the peer acks.
   * `force` (closing): write everything.
   */
  flush = (force?: boolean): void => {
    this.#flushScheduled = false;
    if (!this.#host.writable()) return;
    const high = force === true ? Infinity : this.#host.settings.highWaterMark;
    const [hi, lo] = this.#lanes;
    const done =
      this.#drain(hi, high) &&
      (lo.empty || this.#drain(lo, this.#priorityActive() ? high * BULK_SHARE : quietMark(high)));
    if (!done) this.#hold();
    else if (this.holding) {
      this.holding = false;
      this.#host.clock.clearTimeout(this.#pollTimer);
    }
  };

  /** The peer has taken `chars` characters of what we wrote; a bogus count is ignored. */
  ack(chars: number): void {
    const before = this.#inflight.acked;
    // Frames wholly acknowledged have arrived and been handled: no longer ours to account for.
    if (this.#inflight.ack(chars)) {
      this.progressAt = this.#host.clock.now();
      // The last priority frame has been handled: active for PRIORITY_ACTIVE_MS more.
      if (before < this.#priorityEnd && chars >= this.#priorityEnd)
        this.#priorityAt = this.progressAt;
    }
    if (this.holding) this.resume();
  }

  /** Every envelope the peer has not confirmed: written and not acknowledged, then never written. */
  unconfirmed(): string[] {
    const lost: string[] = [];
    this.#inflight.unconfirmed(lost);
    this.#lanes[0].pending(lost);
    this.#lanes[1].pending(lost);
    return lost;
  }

  /** The link is closed: drop everything (after {@link unconfirmed} was taken). */
  clear(): void {
    this.#host.clock.clearTimeout(this.#pollTimer);
    this.#lanes[0].clear();
    this.#lanes[1].clear();
    this.#inflight.clear();
  }

  /** Start holding envelopes until the backlog falls; poll in case the transport has no ondrain. */
  #hold(): void {
    const { clock, conn } = this.#host;
    if (!this.holding) {
      this.progressAt = clock.now();
      this.#lastBuffered = conn.bufferedAmount ?? 0;
    }
    this.holding = true;
    clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = clock.setTimeout(this.resume, DRAIN_POLL_MS);
  }

  /**
   * Whether priority traffic is active: a priority frame (a call, reply or control envelope; not a
   * lone heartbeat) written and not yet acknowledged by the peer, or acknowledged (written, to a
   * peer that does not ack) less than {@link PRIORITY_ACTIVE_MS} ago.
   */
  #priorityActive(): boolean {
    if (this.peerWindow > 0 && this.#inflight.acked < this.#priorityEnd) return true;
    return this.#host.clock.now() - this.#priorityAt < PRIORITY_ACTIVE_MS;
  }

  /** Write frames from `lane` while the backlog is at most `limit`; whether it is empty now. */
  #drain(lane: OutLane, limit: number): boolean {
    if (lane.empty) return true;
    const { settings, conn } = this.#host;
    const max = Math.min(settings.maxFrameSize, MAX_BATCH);
    const piece = this.peerChunks ? PIECE_CHARS : Infinity;
    while (!lane.empty) {
      if (this.backlog > limit) return false;
      const f = lane.next(max, piece);
      this.#host.wrote();
      this.#inflight.wrote(f.frame.length, this.peerWindow > 0 ? f.envs : undefined);
      if (lane.id === 0 && f.frame !== HEARTBEAT) {
        this.#priorityEnd = this.#inflight.sent;
        this.#priorityAt = this.#host.clock.now();
      }
      conn.send(f.frame);
    }
    return true;
  }
}

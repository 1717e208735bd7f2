/**
 * What a link has written and its peer not yet acknowledged (docs/protocol.md, "Accounting"):
 * frames are numbered by the running total of characters written, an ack for `b` confirms every
 * frame ending at or before `b`, and the envelopes of frames not confirmed are reported when the
 * link is lost.
 */
import { NO_ENVELOPES } from './link-lanes.ts';

/** Frames in flight on a link, with the envelopes each completes. */
export class Inflight {
  /** Characters written since the link came up. */
  sent = 0;
  /** Characters the peer acknowledged. */
  acked = 0;
  #ends: number[] = [];
  #envs: string[][] = [];
  #head = 0;

  /** A frame of `chars` characters was written; `envs` are kept until it is acknowledged. */
  wrote(chars: number, envs: string[] | undefined): void {
    this.sent += chars;
    if (envs === undefined) return;
    this.#ends.push(this.sent);
    this.#envs.push(envs);
  }

  /** Characters written and not acknowledged. */
  get unacked(): number {
    return this.sent - this.acked;
  }

  /**
   * The peer acknowledged `chars` characters: release the frames it covers. Returns whether the
   * ack moved forward (a count beyond what was written, or behind an earlier ack, is ignored).
   */
  ack(chars: number): boolean {
    if (chars <= this.acked || chars > this.sent) return false;
    this.acked = chars;
    const ends = this.#ends;
    const envs = this.#envs;
    let head = this.#head;
    // Release each confirmed frame's envelopes at once (the arrays are compacted now and then).
    while (head < ends.length && ends[head] <= chars) envs[head++] = NO_ENVELOPES;
    if (head === ends.length) {
      this.#ends = [];
      this.#envs = [];
      head = 0;
    } else if (head > 64 && head * 2 > ends.length) {
      this.#ends = ends.slice(head);
      this.#envs = envs.slice(head);
      head = 0;
    }
    this.#head = head;
    return true;
  }

  /** Every envelope of the frames not acknowledged, in order. */
  unconfirmed(into: string[]): void {
    const envs = this.#envs;
    for (let i = this.#head; i < envs.length; i++) for (const e of envs[i]) into.push(e);
  }

  clear(): void {
    this.#ends = [];
    this.#envs = [];
    this.#head = 0;
  }
}

/**
 * Acks per window while the peer's priority traffic is active: its bulk lane then runs up to an
 * eighth of its window ahead (core/link-outbound.ts, `BULK_SHARE`), so an ack every sixteenth
 * lets it refill before it runs dry. Acks are small frames written with whatever the tick writes
 * anyway.
 */
const ACKS_PER_WINDOW = 16;
/**
 * Acks per window otherwise: the peer's bulk lane runs up to seven eighths of its window ahead
 * (`BULK_SHARE_QUIET`), so an ack every quarter keeps three in flight, with a quarter of the ack
 * frames (and of the wake-ups they cost both sides) of the fine rate.
 */
const ACKS_PER_WINDOW_QUIET = 4;
/**
 * After the ack that covers the last priority frame received, keep the fine rate this long (ms):
 * the peer keeps its bulk lane at an eighth for 20 ms after that ack reaches it
 * (`PRIORITY_ACTIVE_MS`), and this covers the ack's way there with room to spare. Should it not
 * (an ack delayed by more than this), the peer's bulk lane waits at most until its own 20 ms
 * have passed, and then runs at seven eighths: a short pause, never a stall.
 */
export const FINE_ACKS_MS = 100;

/** The receiving side of accounting: what a link took in, and when to acknowledge it. */
export class Receipts {
  /** The peer's window from its hello (`fc`): 0, no acks either way. */
  window = 0;
  /** Characters of frames received since the link came up. */
  #chars = 0;
  /** #chars when the last ack was sent. */
  #acked = 0;
  /** A priority frame arrived and no ack has covered it yet. */
  #priority = false;
  /** Until when (clock ms) acks stay at the fine rate; 0: the quiet rate. */
  #fineUntil = 0;
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * A frame of `chars` characters was handled (`priority`: from the peer's priority lane): the
   * ack frame to send now, if one is due.
   */
  took(chars: number, priority: boolean): string | undefined {
    this.#chars += chars;
    if (this.window === 0) return undefined;
    if (priority) this.#priority = true;
    else if (this.#fineUntil !== 0 && !this.#priority && this.#now() >= this.#fineUntil)
      this.#fineUntil = 0;
    const every =
      this.#priority || this.#fineUntil !== 0
        ? this.window / ACKS_PER_WINDOW
        : this.window / ACKS_PER_WINDOW_QUIET;
    return this.#chars - this.#acked >= every ? this.#ack() : undefined;
  }

  /** The ack frame for everything taken in since the last one, if anything was (heartbeat tick). */
  pending(): string | undefined {
    return this.window > 0 && this.#chars > this.#acked ? this.#ack() : undefined;
  }

  #ack(): string {
    this.#acked = this.#chars;
    if (this.#priority) {
      this.#priority = false;
      this.#fineUntil = this.#now() + FINE_ACKS_MS;
    }
    return `{"t":"k","b":${this.#chars}}`;
  }
}

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

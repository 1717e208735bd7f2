/**
 * The two outbound lanes of a link and the chunking of large envelopes (docs/protocol.md,
 * "Lanes and chunks"). Calls, replies and control envelopes take the priority lane; sends and
 * the signals that must stay behind them (exit, DOWN) take the bulk lane. An envelope longer
 * than {@link PIECE_CHARS} leaves as piece frames, so frames of the other lane can go between
 * its pieces; the receiving link joins them back ({@link Reassembler}).
 */
import { ENVELOPE_SEPARATOR } from './protocol.ts';

/** Lane of an outbound envelope: 0 priority (calls, replies, control), 1 bulk (sends). */
export type LaneId = 0 | 1;

/** Largest piece of a chunked envelope (characters); longer envelopes are cut into pieces. */
export const PIECE_CHARS = 32 * 1024;
/**
 * A last piece may be this much longer than the others rather than leave a short tail of its
 * own: a 64 KiB stream chunk (64 Ki characters plus its headers) goes as 2 pieces, not 3.
 */
export const PIECE_SLACK = 1024;

/** A released or empty envelope list. */
export const NO_ENVELOPES: string[] = [];

const QUOTE = 34; // "
const LOWER_S = 115;
const LOWER_X = 120;
const LOWER_D = 100;
const LOWER_C = 99;
const LOWER_R = 114;
const LOWER_F = 102;
const UPPER_S = 83;
const UPPER_C = 67;
const UPPER_P = 80;
const UPPER_E = 69;
const DIGIT_0 = 48;
const TAB = 9;

/**
 * The lane of an envelope, from its first characters: sends (`S…`, `s…`, `{"t":"s"…`), exit signals
 * (`x`) and DOWN (`d`) are bulk, so a signal never overtakes what an actor sent before it ended,
 * and so is a route flush marker (`rf`);
 * everything else (calls, replies, credit, cancels, monitors, sessions, routes, heartbeats) is
 * priority. JSON headers always start with `{"t":"…"` (core writes `t` first).
 */
export function laneOf(text: string): LaneId {
  const c = text.charCodeAt(0);
  // Direct (`S…`) and short routed (`s…`) sends.
  if (c === UPPER_S || c === LOWER_S) return 1;
  if (c !== 123) return 0;
  const t = text.charCodeAt(6);
  if (text.charCodeAt(7) !== QUOTE)
    // A route flush marker (`rf`) must not overtake anything written before it: its answer says
    // that everything sent on the old route has arrived (docs/protocol.md, "Route changes").
    return t === LOWER_R && text.charCodeAt(7) === LOWER_F && text.charCodeAt(8) === QUOTE ? 1 : 0;
  return t === LOWER_S || t === LOWER_X || t === LOWER_D ? 1 : 0;
}

/**
 * The actor a send or call is for, as a key (`<actor>` for the link's peer, `<node>/<actor>` for
 * a routed one); undefined for other envelopes. Only read while the bulk lane holds envelopes
 * and a call comes (see {@link OutLane.holdsFor}), never on the plain send path.
 */
export function targetKey(text: string, peer: string): string | undefined {
  const c = text.charCodeAt(0);
  if (c === UPPER_S || c === UPPER_C) {
    let i = 1;
    while (i < text.length && text.charCodeAt(i) >= DIGIT_0 && text.charCodeAt(i) <= DIGIT_0 + 9)
      i++;
    return text.slice(1, i);
  }
  if (c === LOWER_S || c === LOWER_C) {
    // Short routed: `s<h>,<n>,<o>,<a>…`.
    const nAt = text.indexOf(',') + 1;
    const nEnd = text.indexOf(',', nAt);
    const aAt = text.indexOf(',', nEnd + 1) + 1;
    if (nAt === 0 || nEnd < 0 || aAt === 0) return undefined;
    let i = aAt;
    while (i < text.length && text.charCodeAt(i) >= DIGIT_0 && text.charCodeAt(i) <= DIGIT_0 + 9)
      i++;
    const node = text.slice(nAt, nEnd);
    return node === peer ? text.slice(aAt, i) : `${node}/${text.slice(aAt, i)}`;
  }
  if (c !== 123 || text.charCodeAt(7) !== QUOTE) return undefined;
  const t = text.charCodeAt(6);
  if (t !== LOWER_S && t !== LOWER_C) return undefined;
  const tab = text.indexOf('\t');
  const m = HEADER_TARGET.exec(tab < 0 ? text : text.slice(0, tab));
  if (!m) return undefined;
  const node = JSON.parse(`"${m[1]}"`) as string;
  return node === peer ? m[2] : `${node}/${m[2]}`;
}

const HEADER_TARGET = /"n":"([^"\\]*)".*?"a":(\d+)/;

/** Whether an envelope is a call (direct `C…`, short routed `c…` or routed `{"t":"c"…`). */
export function isCall(text: string): boolean {
  const c = text.charCodeAt(0);
  return (
    c === UPPER_C ||
    c === LOWER_C ||
    (c === 123 && text.charCodeAt(6) === LOWER_C && text.charCodeAt(7) === QUOTE)
  );
}

/** One frame taken from a lane: its text and the whole envelopes it completes. */
export interface LaneFrame {
  frame: string;
  envs: string[];
}

/**
 * A FIFO of envelopes waiting in a link, with the piece of its head envelope already written
 * when that one is chunked. `chars` counts every envelope still (partly) queued, plus one per
 * envelope for its separator.
 */
export class OutLane {
  readonly id: LaneId;
  chars = 0;
  #items: string[] = [];
  #head = 0;
  /** Characters of the head envelope already written as pieces. */
  #offset = 0;
  /** Queued envelopes longer than {@link PIECE_CHARS} (none: the fast path of {@link next}). */
  #big = 0;
  /** Queued sends per target (see {@link targetKey}); kept only while a call asked. */
  #targets: Map<string, number> | undefined;
  #peer = '';

  constructor(id: LaneId) {
    this.id = id;
  }

  get empty(): boolean {
    return this.#head === this.#items.length;
  }

  push(text: string): void {
    this.#items.push(text);
    this.chars += text.length + 1;
    if (text.length > PIECE_CHARS) this.#big++;
    if (this.#targets !== undefined) count(this.#targets, targetKey(text, this.#peer), 1);
  }

  /** Whether a send to the same target as `text` (a call) waits in this lane. */
  holdsFor(text: string, peer: string): boolean {
    if (this.empty) return false;
    const key = targetKey(text, peer);
    if (key === undefined) return false;
    if (this.#targets === undefined) {
      this.#peer = peer;
      const map = new Map<string, number>();
      for (let i = this.#head; i < this.#items.length; i++)
        count(map, targetKey(this.#items[i], peer), 1);
      this.#targets = map;
    }
    return (this.#targets.get(key) ?? 0) > 0;
  }

  /**
   * Take the next frame: the next piece of a head envelope over `piece` characters (cut never
   * inside a surrogate pair; the last one up to {@link PIECE_SLACK} longer), or as many whole envelopes as fit in `max` characters (at least
   * one) joined by the envelope separator.
   */
  next(max: number, piece: number): LaneFrame {
    const q = this.#items;
    const h = this.#head;
    if (this.#big === 0 && this.chars <= max) {
      // The common case (a tick of small envelopes): all of them, in one frame.
      const envs = h === 0 ? q : q.slice(h);
      this.#items = [];
      this.#head = 0;
      this.chars = 0;
      this.#targets = undefined;
      return { frame: envs.length === 1 ? envs[0] : envs.join(ENVELOPE_SEPARATOR), envs };
    }
    const first = q[h];
    if (first.length > piece) {
      const off = this.#offset;
      let end = off + piece;
      // The tail joins the last piece only while that frame stays within our own frame limit.
      if (end + PIECE_SLACK >= first.length && first.length - off + 3 <= max) end = first.length;
      else if ((first.charCodeAt(end - 1) & 0xfc00) === 0xd800) end--;
      const last = end === first.length;
      const frame = `${last ? 'E' : 'P'}${this.id}\t${first.slice(off, end)}`;
      if (!last) {
        this.#offset = end;
        return { frame, envs: NO_ENVELOPES };
      }
      this.#offset = 0;
      this.#advance(1, first.length + 1);
      return { frame, envs: [first] };
    }
    let j = h;
    let size = 0;
    while (j < q.length && (j === h || (q[j].length <= piece && size + q[j].length + 1 <= max)))
      size += q[j++].length + 1;
    if (j === h + 1) {
      this.#advance(1, size);
      return { frame: first, envs: [first] };
    }
    const envs = q.slice(h, j);
    this.#advance(j - h, size);
    return { frame: envs.join(ENVELOPE_SEPARATOR), envs };
  }

  /** Every envelope still (partly) queued, in order. */
  pending(into: string[]): void {
    for (let i = this.#head; i < this.#items.length; i++) into.push(this.#items[i]);
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#offset = 0;
    this.#big = 0;
    this.chars = 0;
    this.#targets = undefined;
  }

  #advance(n: number, chars: number): void {
    const targets = this.#targets;
    if (targets !== undefined)
      for (let i = this.#head; i < this.#head + n; i++)
        count(targets, targetKey(this.#items[i], this.#peer), -1);
    if (this.#big !== 0)
      for (let i = this.#head; i < this.#head + n; i++)
        if (this.#items[i].length > PIECE_CHARS) this.#big--;
    this.#head += n;
    this.chars -= chars;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
      this.#targets = undefined;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}

function count(map: Map<string, number>, key: string | undefined, by: number): void {
  if (key === undefined) return;
  const n = (map.get(key) ?? 0) + by;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

/** Whether a received frame is a piece of a chunked envelope (`P0\t…`, `E1\t…`). */
export function isPiece(frame: string): boolean {
  const c = frame.charCodeAt(0);
  if (c !== UPPER_P && c !== UPPER_E) return false;
  const l = frame.charCodeAt(1);
  return (l === DIGIT_0 || l === DIGIT_0 + 1) && frame.charCodeAt(2) === TAB;
}

/** Joins the pieces a peer sends back into envelopes, one envelope in progress per lane. */
export class Reassembler {
  #parts: [string[], string[]] = [[], []];
  #chars = [0, 0];

  /**
   * Take a piece frame (see {@link isPiece}): the whole envelope when it was the last piece,
   * undefined while more are to come, or null when the envelope would exceed `max` characters.
   */
  take(frame: string, max: number): string | undefined | null {
    const lane = frame.charCodeAt(1) - DIGIT_0;
    const parts = this.#parts[lane];
    const chars = this.#chars[lane] + frame.length - 3;
    if (chars > max) return null;
    const piece = frame.slice(3);
    if (frame.charCodeAt(0) === UPPER_P) {
      parts.push(piece);
      this.#chars[lane] = chars;
      return undefined;
    }
    if (parts.length === 0) return piece;
    parts.push(piece);
    const whole = parts.join('');
    this.#parts[lane] = [];
    this.#chars[lane] = 0;
    return whole;
  }
}

import { type EnvelopeHeader, PAYLOAD_SEPARATOR, isValidNodeId } from './protocol.ts';

/**
 * The envelope module's readers (core/envelope-write.ts has its writers): with the writers, the
 * only place in core/ (link-level frames aside, in core/link.ts) where a wire field name
 * appears. Direct headers, the canonical JSON fast path and the hot-path validator; the schemas
 * that validate what arrives are in core/protocol.ts, the format in docs/protocol.md.
 */

/**
 * Direct envelopes: the traffic envelopes `s`, `c` and `r` between two nodes over their own link
 * leave out `n`, `o` and `h`, which the link already says (the receiver, the authenticated peer,
 * no hop): `S<a>`, `C<a>,<c>` and `R<c>,<k>`, then `\t` and the payload as usual. A JSON header
 * starts with `{`, so the two forms cannot be confused. Routed traffic keeps the JSON form.
 */
export const DIRECT_SEND = 83; // S
export const DIRECT_CALL = 67; // C
export const DIRECT_REPLY = 82; // R

/** Whether the envelope starting with char code `kind` is a direct one (see {@link DIRECT_SEND}). */
export function isDirect(kind: number): boolean {
  return kind === DIRECT_SEND || kind === DIRECT_CALL || kind === DIRECT_REPLY;
}

/**
 * Short routed envelopes: the traffic envelopes `s`, `c` and `r` between nodes that are not
 * linked, on links whose peer announced `rh` in its hello, carry a fixed-layout header instead
 * of JSON: `s<h>,<n>,<o>,<a>`, `c<h>,<n>,<o>,<a>,<c>` and `r<h>,<n>,<o>,<c>,<k>` (hops first, so
 * a relay rewrites the digits after the first character; node ids never hold a comma). A relay
 * reads the target, origin and hops and forwards the rest of the text as received.
 */
export const ROUTED_SEND = 115; // s
export const ROUTED_CALL = 99; // c
export const ROUTED_REPLY = 114; // r

/** Whether the envelope starting with char code `kind` is a short routed one (see {@link ROUTED_SEND}). */
export function isShortRouted(kind: number): boolean {
  return kind === ROUTED_SEND || kind === ROUTED_CALL || kind === ROUTED_REPLY;
}

/** Whether `text[start..end)` is `s`. */
function sameText(text: string, start: number, end: number, s: string): boolean {
  return end - start === s.length && text.startsWith(s, start);
}

/** Build one envelope's text. */
export function envelope(header: object, payload?: string): string {
  const h = JSON.stringify(header);
  return payload === undefined ? h : h + PAYLOAD_SEPARATOR + payload;
}

/**
 * The text of a canonical envelope (`text`, its hop count `hops` at `text.slice(at, end)`, as
 * {@link EnvelopeReader.hop} reported) with the hop count raised by one: byte for byte what
 * `envelope({ ...header, h: hops + 1 }, payload)` gives for it, without re-encoding anything.
 */
export function nextHopText(text: string, at: number, end: number, hops: number): string {
  return text.slice(0, at) + (hops + 1) + text.slice(end);
}

const isPosInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/**
 * The hot path's validator for the three envelope types that carry traffic (`s`, `c`, `r`):
 * it accepts exactly what their zod schemas accept (a property test in
 * tests/protocol-fastpath.test.ts holds it to that) at a fraction of the cost. Anything it does
 * not accept goes through {@link EnvelopeHeader}, which also produces the detailed issues.
 */
export function fastHeader(raw: unknown): EnvelopeHeader | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const h = raw as Record<string, unknown>;
  const t = h.t;
  if (t !== 's' && t !== 'c' && t !== 'r') return undefined;
  const hops = h.h;
  if (
    !isValidNodeId(h.n) ||
    !isValidNodeId(h.o) ||
    typeof hops !== 'number' ||
    !Number.isSafeInteger(hops) ||
    hops < 0 ||
    hops > 255
  )
    return undefined;
  if (t === 'r') {
    if (!isPosInt(h.c) || (h.k !== 0 && h.k !== 1)) return undefined;
  } else {
    if (!isPosInt(h.a)) return undefined;
    if (t === 'c' && !isPosInt(h.c)) return undefined;
    // An awaited send's flag: 1 or absent, as SendHeader says (anything else is a protocol error).
    if (t === 's' && h.f !== undefined && h.f !== 1) return undefined;
  }
  return raw as EnvelopeHeader;
}

/**
 * Reads envelope headers. It keeps what the last read found (the numbers of a direct header,
 * where a canonical header's hop count lies) in fields of its own instead of allocating a result
 * per envelope: one reader per router, read synchronously.
 */
export class EnvelopeReader {
  /** The numbers of the last direct header {@link parseDirect} read (`y` is 0 for `S`). */
  readonly direct = { x: 0, y: 0 };
  /**
   * Where the hop count of the header the last {@link parseHeader} read lies, when that header
   * had the canonical shape (`at` is -1 otherwise): the digits are `text.slice(at, end)`. A relay
   * uses it to forward an envelope as received with only those digits rewritten (see
   * {@link nextHopText}), instead of parsing and serialising the header again.
   */
  readonly hop = { at: -1, end: 0 };
  /**
   * The routing part of the last short routed header {@link parseRouted} read: hops, target,
   * origin, and where the hop digits end (the numbers after the ids are in {@link direct}).
   */
  readonly routed = { h: 0, n: '', o: '', hopEnd: 0 };
  /** Where the last {@link #readInt} stopped. */
  #intEnd = 0;

  /**
   * Read the short routed header `text[0..end)` (`s<h>,<n>,<o>,<a>`, `c<h>,<n>,<o>,<a>,<c>`,
   * `r<h>,<n>,<o>,<c>,<k>`) into {@link routed} and {@link direct}; false when it is malformed.
   * The ids are not checked against the node id rule here: the caller does, where it matters.
   */
  parseRouted(text: string, end: number): boolean {
    let i = 1;
    let h = 0;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      h = h * 10 + (c - 48);
    }
    if (i === 1 || i > 4 || h > 255 || (i > 2 && text.charCodeAt(1) === 48)) return false;
    if (text.charCodeAt(i) !== 44 /* , */) return false;
    const hopEnd = i;
    const nEnd = text.indexOf(',', i + 1);
    if (nEnd < 0 || nEnd >= end) return false;
    const oEnd = text.indexOf(',', nEnd + 1);
    if (oEnd < 0 || oEnd >= end) return false;
    const r = this.routed;
    r.h = h;
    r.hopEnd = hopEnd;
    // Consecutive envelopes mostly name the same nodes: reuse the strings of the last read (no
    // allocation, and their hashes are already computed for the route lookups that follow).
    r.n = sameText(text, i + 1, nEnd, r.n) ? r.n : text.slice(i + 1, nEnd);
    r.o = sameText(text, nEnd + 1, oEnd, r.o) ? r.o : text.slice(nEnd + 1, oEnd);
    // The numbers are those of the direct kind of the same letter (`s` → `S`: the case bit).
    return this.#numbers(text, text.charCodeAt(0) ^ 32, oEnd + 1, end);
  }

  /**
   * Read the direct header `text[0..end)` (`S<a>`, `C<a>,<c>`, `R<c>,<k>`: positive safe integers
   * without leading zeros, `k` 0 or 1) into {@link direct}; false when it is malformed.
   */
  parseDirect(text: string, end: number): boolean {
    return this.#numbers(text, text.charCodeAt(0), 1, end);
  }

  /** The numbers of a direct header of `kind` at `text[start..end)` into {@link direct}. */
  #numbers(text: string, kind: number, start: number, end: number): boolean {
    let i = start;
    let x = 0;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      x = x * 10 + (c - 48);
    }
    if (
      i === start ||
      i - start > 16 ||
      x === 0 ||
      x > Number.MAX_SAFE_INTEGER ||
      text.charCodeAt(start) === 48
    )
      return false;
    this.direct.x = x;
    this.direct.y = 0;
    if (kind === DIRECT_SEND) return i === end;
    if (text.charCodeAt(i) !== 44 /* , */) return false;
    const yStart = ++i;
    let y = 0;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) return false;
      y = y * 10 + (c - 48);
    }
    const len = i - yStart;
    if (
      len === 0 ||
      len > 16 ||
      y > Number.MAX_SAFE_INTEGER ||
      (len > 1 && text.charCodeAt(yStart) === 48)
    )
      return false;
    if (kind === DIRECT_CALL ? y === 0 : y > 1) return false;
    this.direct.y = y;
    return kind === DIRECT_CALL || kind === DIRECT_REPLY;
  }

  /**
   * Parse an envelope header. The headers this code writes have one canonical shape —
   * `{"t":T,"n":"…","o":"…"` then integer fields — which is read here without `JSON.parse`; any
   * other text (escapes in ids, other field types, other key orders) falls back to `JSON.parse`,
   * so the result is always what `JSON.parse` gives (a property test holds it to that).
   * @throws {SyntaxError} for text that is not JSON.
   */
  parseHeader(text: string): unknown {
    this.hop.at = -1;
    return this.#parseCanonical(text) ?? JSON.parse(text);
  }

  #parseCanonical(text: string): Record<string, unknown> | undefined {
    // Only the three traffic envelopes, in the exact field order the node writes them:
    //   {"t":"s","n":"…","o":"…","h":H,"a":A}
    //   {"t":"c","n":"…","o":"…","h":H,"a":A,"c":C}
    //   {"t":"r","n":"…","o":"…","h":H,"c":C,"k":K}
    if (
      !text.startsWith('{"t":"') ||
      text.charCodeAt(7) !== 34 /* " */ ||
      !text.startsWith(',"n":"', 8)
    )
      return undefined;
    const t = text.charCodeAt(6);
    if (t !== 115 /* s */ && t !== 99 /* c */ && t !== 114 /* r */) return undefined;
    const nEnd = text.indexOf('"', 14);
    if (nEnd < 0 || !text.startsWith(',"o":"', nEnd + 1)) return undefined;
    const oStart = nEnd + 7;
    const oEnd = text.indexOf('"', oStart);
    if (oEnd < 0 || !text.startsWith(',"h":', oEnd + 1)) return undefined;
    const n = text.slice(14, nEnd);
    const o = text.slice(oStart, oEnd);
    // An escape means the id holds a quote or a backslash: let JSON.parse unescape it.
    if (n.includes('\\') || o.includes('\\')) return undefined;
    const h = this.#readInt(text, oEnd + 6);
    if (h < 0) return undefined;
    const hopEnd = this.#intEnd;
    let i = this.#intEnd;
    if (t === 114) {
      if (!text.startsWith(',"c":', i)) return undefined;
      const c = this.#readInt(text, i + 5);
      if (c < 0 || !text.startsWith(',"k":', this.#intEnd)) return undefined;
      const k = this.#readInt(text, this.#intEnd + 5);
      if (k < 0 || !this.#closes(text)) return undefined;
      this.#markHop(oEnd + 6, hopEnd);
      return { t: 'r', n, o, h, c, k };
    }
    if (!text.startsWith(',"a":', i)) return undefined;
    const a = this.#readInt(text, i + 5);
    if (a < 0) return undefined;
    i = this.#intEnd;
    if (t === 115) {
      if (!this.#closes(text)) return undefined;
      this.#markHop(oEnd + 6, hopEnd);
      return { t: 's', n, o, h, a };
    }
    if (!text.startsWith(',"c":', i)) return undefined;
    const c = this.#readInt(text, i + 5);
    if (c < 0 || !this.#closes(text)) return undefined;
    this.#markHop(oEnd + 6, hopEnd);
    return { t: 'c', n, o, h, a, c };
  }

  /** Whether the last integer read is followed by the closing brace that ends `text`. */
  #closes(text: string): boolean {
    return this.#intEnd === text.length - 1 && text.charCodeAt(this.#intEnd) === 125; /* } */
  }

  #markHop(at: number, end: number): void {
    this.hop.at = at;
    this.hop.end = end;
  }

  /**
   * A JSON non-negative integer at `start` (no sign, no leading zero, no fraction or exponent,
   * a safe integer); -1 if there is none. Sets {@link #intEnd}.
   */
  #readInt(text: string, start: number): number {
    let v = 0;
    let j = start;
    for (; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    const len = j - start;
    if (
      len === 0 ||
      len > 16 ||
      v > Number.MAX_SAFE_INTEGER ||
      (len > 1 && text.charCodeAt(start) === 48)
    )
      return -1;
    const next = text.charCodeAt(j);
    if (next !== 44 /* , */ && next !== 125 /* } */) return -1;
    this.#intEnd = j;
    return v;
  }
}

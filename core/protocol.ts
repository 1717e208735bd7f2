import { z } from 'zod';

/**
 * Wire protocol version, exchanged in the handshake. Peers with another version are refused
 * with `VERSION_MISMATCH`. See docs/protocol.md.
 */
export const PROTOCOL_VERSION = 3;

/** Longest node id, in characters (docs/protocol.md, "Node ids"). */
export const MAX_NODE_ID_LENGTH = 128;
/**
 * What a node id is made of: 1 to {@link MAX_NODE_ID_LENGTH} characters from `A–Z a–z 0–9` and
 * `. _ - : @ + ~`. No separators that other encodings use (`|`, `/`, whitespace, quotes,
 * backslash, control characters), so an id can never be mistaken for part of another field.
 */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._:@+~-]{1,128}$/;

/** The rule for node ids, in words (for error messages). */
export const NODE_ID_RULE = 'a node id is 1 to 128 characters from A-Z a-z 0-9 . _ - : @ + ~';

/** Whether `v` is a valid node id (see {@link NODE_ID_PATTERN}). */
export function isValidNodeId(v: unknown): v is string {
  return typeof v === 'string' && v.length <= MAX_NODE_ID_LENGTH && NODE_ID_PATTERN.test(v);
}

const nodeId = z.string().regex(NODE_ID_PATTERN, NODE_ID_RULE);
const actorId = z.number().int().positive();
const hops = z.number().int().min(0).max(255);
const callId = z.number().int().positive();
const monitorId = z.string().min(1).max(300);
const name = z.string().min(1).max(256);

/** Fields every routed envelope carries: target node, origin node, hop count. */
const routed = { n: nodeId, o: nodeId, h: hops };
const count = z.number().int().min(0);
/**
 * `e`: the number of the sender's session with the receiver (core/session.ts), carried by
 * envelopes that create state on the receiver. Optional: an envelope without it is current.
 */
const session = { e: count.optional() };

/** `s`: a message to actor `a` on node `n`. Payload: the message. */
export const SendHeader = z.object({
  t: z.literal('s'),
  ...routed,
  a: actorId,
  /**
   * 1: an awaited send (`sendAwait`) under end-to-end credit: never dropped for congestion on
   * the way, and granted back to `o` (an `fg`) once actor `a` has taken it.
   */
  f: z.literal(1).optional(),
});
/** `fg`: node `o` grants `b` characters of credit back to node `n` (its awaited sends were taken). */
export const FlowGrantHeader = z.object({
  t: z.literal('fg'),
  ...routed,
  b: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
/** `c`: a call to actor `a`; the reply goes to node `o` as call `c`. Payload: the message. */
export const CallHeader = z.object({ t: z.literal('c'), ...routed, a: actorId, c: callId });
/** `r`: the reply to call `c` of node `n`; `k` 1 = ok (payload: value), 0 = error (payload: ErrorData). */
export const ReplyHeader = z.object({
  t: z.literal('r'),
  ...routed,
  c: callId,
  k: z.union([z.literal(0), z.literal(1)]),
});
/**
 * `ca`: node `o` cancels its call `c` to actor `a` (the caller's `AbortSignal` fired): the callee
 * drops the call if it still waits, aborts the call's signal (`ctx.signal`) and never replies.
 */
export const CancelHeader = z.object({ t: z.literal('ca'), ...routed, a: actorId, c: callId });
/** `x`: an exit signal from actor `f` of node `o` to actor `a`. Payload: the reason. */
export const ExitHeader = z.object({
  t: z.literal('x'),
  ...routed,
  a: actorId,
  f: actorId.or(z.literal(0)),
  l: z.union([z.literal(0), z.literal(1)]),
});
/** `l` / `u`: link / unlink actor `f` of node `o` with actor `a`. */
export const LinkHeader = z.object({
  t: z.enum(['l', 'u']),
  ...routed,
  a: actorId,
  f: actorId,
  ...session,
});
/** `m`: actor `w` of node `o` monitors actor `a`, monitor id `m`. */
export const MonitorHeader = z.object({
  t: z.literal('m'),
  ...routed,
  a: actorId,
  w: actorId,
  m: monitorId,
  ...session,
});
/** `dm`: remove monitor `m` from actor `a`. */
export const DemonitorHeader = z.object({
  t: z.literal('dm'),
  ...routed,
  a: actorId,
  m: monitorId,
});
/** `d`: DOWN for monitor `m` held by actor `w` of node `n`; the dead actor is `a` of node `o`. Payload: `[reason, result]`. */
export const DownHeader = z.object({
  t: z.literal('d'),
  ...routed,
  w: actorId,
  m: monitorId,
  a: actorId,
});
/** `sp`: spawn behaviour `b` on node `n`, reply to call `c`; link to / monitor by actor `w` of node `o` when `lk`/`m` are set. Payload: args. */
export const SpawnHeader = z.object({
  t: z.literal('sp'),
  ...routed,
  c: callId,
  b: name,
  w: actorId.or(z.literal(0)),
  lk: z.union([z.literal(0), z.literal(1)]),
  m: monitorId.or(z.literal('')),
  ...session,
});
/**
 * `sr`: the number `e` of node `o`'s session with node `n`, sent when a node it had lost becomes
 * reachable again, and in answer to an envelope of a session it has ended.
 */
export const SessionRouteHeader = z.object({ t: z.literal('sr'), ...routed, e: count });

/**
 * `rf` / `ra`: route flush marker and its answer. When a node's route to `n` changes (a direct
 * link replaces a relayed path), it holds new envelopes for `n`, sends `rf` along the old route
 * and releases them on the new one when `n` answers `ra`: nothing sent later overtakes what is
 * still in flight on the old route.
 */
/**
 * `dr`: node `o` (a relay) dropped `k` of node `n`'s envelopes for node `x` because of `r`
 * (`overflow`: its link to `x` was congested; `unreachable`: it had no route to `x`). Sent to the
 * sender of the dropped envelopes, at most once per `(n, x, r)` every 250 ms, with the count
 * since the last report; the sender raises one `deadLetter` with that count.
 */
export const DropReportHeader = z.object({
  t: z.literal('dr'),
  ...routed,
  x: nodeId,
  k: z.number().int().positive(),
  r: z.enum(['overflow', 'unreachable']),
});

export const RouteFlushHeader = z.object({
  t: z.enum(['rf', 'ra']),
  ...routed,
  k: z.number().int().positive(),
});

/** Link-local: heartbeat. */
export const HeartbeatHeader = z.object({ t: z.literal('hb') });
/** Link-local: node `x` is no longer reachable through the sender. */
export const NodeDownHeader = z.object({ t: z.literal('nd'), x: nodeId });
/**
 * Link-local: envelopes for node `x` that went through the sender may have been lost although
 * `x` is still reachable (a route switch of the sender failed): a receiver routing to `x`
 * through the sender has lost its session with `x`.
 */
export const SessionLostHeader = z.object({ t: z.literal('sl'), x: nodeId });
/**
 * Link-local, the first envelope on every link: the number `l` of the sender's session with the
 * receiver (core/session.ts). A receiver in an earlier session still holds state the sender
 * dropped, and settles it now: a link lost on one side only cannot leave orphaned monitors.
 */
export const SessionHeader = z.object({ t: z.literal('ss'), l: count });
/** Link-local: registry add (`ga`) or delete (`gd`) of name `g` for actor `a` of node `x`. */
export const RegistryHeader = z.object({ t: z.enum(['ga', 'gd']), g: name, x: nodeId, a: actorId });
/** Link-local: membership gossip, the nodes the sender knows and their listen addresses. */
export const MembersHeader = z.object({
  t: z.literal('mb'),
  m: z.array(z.tuple([nodeId, z.array(z.string().max(512)).max(16)])).max(4096),
});

/** Every post-handshake envelope header, discriminated by `t`. */
export const EnvelopeHeader = z.discriminatedUnion('t', [
  SendHeader,
  CallHeader,
  ReplyHeader,
  CancelHeader,
  FlowGrantHeader,
  ExitHeader,
  LinkHeader,
  MonitorHeader,
  DemonitorHeader,
  DownHeader,
  SpawnHeader,
  RouteFlushHeader,
  DropReportHeader,
  SessionRouteHeader,
  HeartbeatHeader,
  NodeDownHeader,
  SessionLostHeader,
  SessionHeader,
  RegistryHeader,
  MembersHeader,
]);
export type EnvelopeHeader = z.infer<typeof EnvelopeHeader>;
/** Headers of envelopes that are routed between nodes (carry `n`, `o`, `h`). */
export type RoutedHeader = Extract<EnvelopeHeader, { n: string }>;

/** Handshake messages: one JSON object per frame, before the link is up. */
export const Hello = z.object({
  t: z.literal('hello'),
  v: z.number().int(),
  /**
   * The sender's role on this connection: `d` it dialed, `l` it accepted. The two ends must
   * differ (a hello with the receiver's own role is refused). Informative only: each side binds
   * the proofs to the roles it knows itself (see {@link handshakeTranscript}), so a false role
   * gets a peer nothing; absent, the receiver takes the peer for the other role.
   */
  r: z.enum(['d', 'l']).optional(),
  node: nodeId,
  inc: z.string().min(1).max(64),
  nonce: z.string().regex(/^[0-9a-f]{32}$/),
  addrs: z.array(z.string().max(512)).max(16),
  /**
   * Flow control: present when the sender acknowledges what it receives with ack frames
   * (`{"t":"k","b":CHARS}`, see docs/protocol.md) and honours them; the value is its window
   * (high-water mark, in characters): the receiver acks at least every `fc / 4` characters.
   * Optional, so a node that leaves it out still links; flow control then relies on the
   * transport's `bufferedAmount` alone.
   */
  fc: z.number().int().positive().optional(),
  /** Chunks: 1 when the sender joins chunked envelopes (piece frames, see core/link-lanes.ts). */
  ch: z.literal(1).optional(),
});
export const Auth = z.object({ t: z.literal('auth'), mac: z.string().regex(/^[0-9a-f]{64}$/) });
export const AuthOk = z.object({ t: z.literal('ok') });
export const Reject = z.object({
  t: z.literal('reject'),
  code: z.string().max(64),
  message: z.string().max(1024),
});
export const HandshakeMessage = z.discriminatedUnion('t', [Hello, Auth, AuthOk, Reject]);
export type HandshakeMessage = z.infer<typeof HandshakeMessage>;
export type Hello = z.infer<typeof Hello>;

/** One side of a handshake: its node id, incarnation and the nonce it sent on this connection. */
export interface HandshakeParty {
  node: string;
  inc: string;
  nonce: string;
}

/**
 * The text a handshake proof is the HMAC of (docs/security.md, "Handshake"): a JSON array —
 * one unambiguous encoding, whatever the fields hold — of a fixed label, the protocol version,
 * the prover's role (`dialer` or `listener`), then the dialer's id, incarnation and nonce and the
 * listener's id, incarnation and nonce, always in that order. Both proofs of one connection
 * cover the same transcript and differ only in the role, so a proof is valid for one role on one
 * connection: a node never accepts a proof in the role it proves in itself, and each node's
 * nonce is fresh per connection.
 */
export function handshakeTranscript(
  role: 'dialer' | 'listener',
  dialer: HandshakeParty,
  listener: HandshakeParty,
): string {
  return JSON.stringify([
    'troupe-link-proof',
    PROTOCOL_VERSION,
    role,
    dialer.node,
    dialer.inc,
    dialer.nonce,
    listener.node,
    listener.inc,
    listener.nonce,
  ]);
}

/**
 * A flow-control ack, always alone in its frame and sent only to peers whose hello had `fc: 1`:
 * `b` is the total length (in characters) of the frames received on the link since it came up.
 * Link-local; handled by the link itself, never routed.
 */
export const ACK_FRAME = /^\{"t":"k","b":(\d{1,15})\}$/;

/** Separates envelopes inside one frame (JSON text never contains a raw newline). */
export const ENVELOPE_SEPARATOR = '\n';
/** Separates an envelope's header from its payload (JSON text never contains a raw tab). */
export const PAYLOAD_SEPARATOR = '\t';

/**
 * Direct envelopes: the traffic envelopes `s`, `c` and `r` between two nodes over their own link
 * leave out `n`, `o` and `h`, which the link already says (the receiver, the authenticated peer,
 * no hop): `S<a>`, `C<a>,<c>` and `R<c>,<k>`, then `\t` and the payload as usual. A JSON header
 * starts with `{`, so the two forms cannot be confused. Routed traffic keeps the JSON form.
 */
export const DIRECT_SEND = 83; // S
export const DIRECT_CALL = 67; // C
export const DIRECT_REPLY = 82; // R

/** The numbers of the last direct header {@link parseDirectHeader} read (`y` is 0 for `S`). */
export const directFields = { x: 0, y: 0 };

/** The text of a direct header. */
export function directHeader(kind: number, x: number, y: number): string {
  if (kind === DIRECT_SEND) return 'S' + x;
  return (kind === DIRECT_CALL ? 'C' : 'R') + x + ',' + y;
}

/**
 * Read the direct header `text[0..end)` (`S<a>`, `C<a>,<c>`, `R<c>,<k>`: positive safe integers
 * without leading zeros, `k` 0 or 1) into {@link directFields}; false when it is malformed.
 */
export function parseDirectHeader(text: string, end: number): boolean {
  const kind = text.charCodeAt(0);
  let i = 1;
  let x = 0;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) break;
    x = x * 10 + (c - 48);
  }
  if (i === 1 || i > 17 || x === 0 || x > Number.MAX_SAFE_INTEGER || text.charCodeAt(1) === 48)
    return false;
  directFields.x = x;
  directFields.y = 0;
  if (kind === DIRECT_SEND) return i === end;
  if (text.charCodeAt(i) !== 44 /* , */) return false;
  const start = ++i;
  let y = 0;
  for (; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    y = y * 10 + (c - 48);
  }
  const len = i - start;
  if (
    len === 0 ||
    len > 16 ||
    y > Number.MAX_SAFE_INTEGER ||
    (len > 1 && text.charCodeAt(start) === 48)
  )
    return false;
  if (kind === DIRECT_CALL ? y === 0 : y > 1) return false;
  directFields.y = y;
  return kind === DIRECT_CALL || kind === DIRECT_REPLY;
}

/**
 * Writes the JSON headers of traffic envelopes (`s`, `c`, `r`) from node `origin`, the form
 * routed traffic takes (see {@link directHeader} for the direct one), caching quoted node ids.
 */
export class TrafficHeaders {
  readonly #quoted = new Map<string, string>();
  readonly #origin: string;
  readonly #maxCached: number;

  constructor(origin: string, maxCached: number) {
    this.#origin = origin;
    this.#maxCached = maxCached;
  }

  /** The JSON header of a traffic envelope of `kind` (a `DIRECT_*` code) for `node`. */
  json(kind: number, node: string, x: number, y: number): string {
    const n = this.#q(node);
    const o = this.#q(this.#origin);
    if (kind === DIRECT_SEND) return `{"t":"s","n":${n},"o":${o},"h":0,"a":${x}}`;
    if (kind === DIRECT_CALL) return `{"t":"c","n":${n},"o":${o},"h":0,"a":${x},"c":${y}}`;
    return `{"t":"r","n":${n},"o":${o},"h":0,"c":${x},"k":${y}}`;
  }

  /** `text` in the JSON form if it is a direct envelope for `node` (one held during a route switch that leaves on another link). */
  undirect(text: string, node: string): string {
    const kind = text.charCodeAt(0);
    if (kind !== DIRECT_SEND && kind !== DIRECT_CALL && kind !== DIRECT_REPLY) return text;
    const tab = text.indexOf(PAYLOAD_SEPARATOR);
    if (!parseDirectHeader(text, tab < 0 ? text.length : tab)) return text;
    return this.json(kind, node, directFields.x, directFields.y) + (tab < 0 ? '' : text.slice(tab));
  }

  #q(s: string): string {
    let q = this.#quoted.get(s);
    if (q === undefined) {
      q = JSON.stringify(s);
      if (this.#quoted.size < this.#maxCached) this.#quoted.set(s, q);
    }
    return q;
  }
}

/** Build one envelope's text. */
export function envelope(header: object, payload?: string): string {
  const h = JSON.stringify(header);
  return payload === undefined ? h : h + PAYLOAD_SEPARATOR + payload;
}

const isNodeId = isValidNodeId;
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
    !isNodeId(h.n) ||
    !isNodeId(h.o) ||
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
 * Parse an envelope header. The headers this code writes have one canonical shape —
 * `{"t":T,"n":"…","o":"…"` then integer fields — which is read here without `JSON.parse`; any
 * other text (escapes in ids, other field types, other key orders) falls back to `JSON.parse`,
 * so the result is always what `JSON.parse` gives (a property test holds it to that).
 * @throws {SyntaxError} for text that is not JSON.
 */
export function parseHeader(text: string): unknown {
  canonicalHop.at = -1;
  return parseCanonical(text) ?? JSON.parse(text);
}

/**
 * Where the hop count of the header the last {@link parseHeader} read lies, when that header had
 * the canonical shape (`at` is -1 otherwise): the digits are `text.slice(at, end)`. A relay
 * uses it to forward an envelope as received with only those digits rewritten (see
 * {@link nextHopText}), instead of parsing and serialising the header again.
 */
export const canonicalHop = { at: -1, end: 0 };

/**
 * The text of a canonical envelope (`text`, its hop count `hops` at `text.slice(at, end)`, as
 * {@link canonicalHop} reported) with the hop count raised by one: byte for byte what
 * `envelope({ ...header, h: hops + 1 }, payload)` gives for it, without re-encoding anything.
 */
export function nextHopText(text: string, at: number, end: number, hops: number): string {
  return text.slice(0, at) + (hops + 1) + text.slice(end);
}

function parseCanonical(text: string): Record<string, unknown> | undefined {
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
  const h = readInt(text, oEnd + 6);
  if (h < 0) return undefined;
  const hopEnd = intEnd;
  let i = intEnd;
  if (t === 114) {
    if (!text.startsWith(',"c":', i)) return undefined;
    const c = readInt(text, i + 5);
    if (c < 0 || !text.startsWith(',"k":', intEnd)) return undefined;
    const k = readInt(text, intEnd + 5);
    if (k < 0 || intEnd !== text.length - 1 || text.charCodeAt(intEnd) !== 125) return undefined;
    canonicalHop.at = oEnd + 6;
    canonicalHop.end = hopEnd;
    return { t: 'r', n, o, h, c, k };
  }
  if (!text.startsWith(',"a":', i)) return undefined;
  const a = readInt(text, i + 5);
  if (a < 0) return undefined;
  i = intEnd;
  if (t === 115) {
    if (i !== text.length - 1 || text.charCodeAt(i) !== 125 /* } */) return undefined;
    canonicalHop.at = oEnd + 6;
    canonicalHop.end = hopEnd;
    return { t: 's', n, o, h, a };
  }
  if (!text.startsWith(',"c":', i)) return undefined;
  const c = readInt(text, i + 5);
  if (c < 0 || intEnd !== text.length - 1 || text.charCodeAt(intEnd) !== 125) return undefined;
  canonicalHop.at = oEnd + 6;
  canonicalHop.end = hopEnd;
  return { t: 'c', n, o, h, a, c };
}

/** Where the last {@link readInt} stopped. */
let intEnd = 0;

/**
 * A JSON non-negative integer at `start` (no sign, no leading zero, no fraction or exponent,
 * a safe integer); -1 if there is none. Sets {@link intEnd}.
 */
function readInt(text: string, start: number): number {
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
  intEnd = j;
  return v;
}

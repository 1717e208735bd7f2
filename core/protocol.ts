import { z } from 'zod';

/**
 * Wire protocol version, exchanged in the handshake. Peers with another version are refused
 * with `VERSION_MISMATCH`. See docs/protocol.md.
 */
export const PROTOCOL_VERSION = 1;

const nodeId = z.string().min(1).max(256);
const actorId = z.number().int().positive();
const hops = z.number().int().min(0).max(255);
const callId = z.number().int().positive();
const monitorId = z.string().min(1).max(300);
const name = z.string().min(1).max(256);

/** Fields every routed envelope carries: target node, origin node, hop count. */
const routed = { n: nodeId, o: nodeId, h: hops };

/** `s`: a message to actor `a` on node `n`. Payload: the message. */
export const SendHeader = z.object({ t: z.literal('s'), ...routed, a: actorId });
/** `c`: a call to actor `a`; the reply goes to node `o` as call `c`. Payload: the message. */
export const CallHeader = z.object({ t: z.literal('c'), ...routed, a: actorId, c: callId });
/** `r`: the reply to call `c` of node `n`; `k` 1 = ok (payload: value), 0 = error (payload: ErrorData). */
export const ReplyHeader = z.object({ t: z.literal('r'), ...routed, c: callId, k: z.union([z.literal(0), z.literal(1)]) });
/** `x`: an exit signal from actor `f` of node `o` to actor `a`. Payload: the reason. */
export const ExitHeader = z.object({ t: z.literal('x'), ...routed, a: actorId, f: actorId.or(z.literal(0)), l: z.union([z.literal(0), z.literal(1)]) });
/** `l` / `u`: link / unlink actor `f` of node `o` with actor `a`. */
export const LinkHeader = z.object({ t: z.enum(['l', 'u']), ...routed, a: actorId, f: actorId });
/** `m`: actor `w` of node `o` monitors actor `a`, monitor id `m`. */
export const MonitorHeader = z.object({ t: z.literal('m'), ...routed, a: actorId, w: actorId, m: monitorId });
/** `dm`: remove monitor `m` from actor `a`. */
export const DemonitorHeader = z.object({ t: z.literal('dm'), ...routed, a: actorId, m: monitorId });
/** `d`: DOWN for monitor `m` held by actor `w` of node `n`; the dead actor is `a` of node `o`. Payload: `[reason, result]`. */
export const DownHeader = z.object({ t: z.literal('d'), ...routed, w: actorId, m: monitorId, a: actorId });
/** `sp`: spawn behaviour `b` on node `n`, reply to call `c`; link to / monitor by actor `w` of node `o` when `lk`/`m` are set. Payload: args. */
export const SpawnHeader = z.object({
  t: z.literal('sp'),
  ...routed,
  c: callId,
  b: name,
  w: actorId.or(z.literal(0)),
  lk: z.union([z.literal(0), z.literal(1)]),
  m: monitorId.or(z.literal('')),
});

/**
 * `rf` / `ra`: route flush marker and its answer. When a node's route to `n` changes (a direct
 * link replaces a relayed path), it holds new envelopes for `n`, sends `rf` along the old route
 * and releases them on the new one when `n` answers `ra`: nothing sent later overtakes what is
 * still in flight on the old route.
 */
export const RouteFlushHeader = z.object({ t: z.enum(['rf', 'ra']), ...routed, k: z.number().int().positive() });

/** Link-local: heartbeat. */
export const HeartbeatHeader = z.object({ t: z.literal('hb') });
/** Link-local: node `x` is no longer reachable through the sender. */
export const NodeDownHeader = z.object({ t: z.literal('nd'), x: nodeId });
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
  ExitHeader,
  LinkHeader,
  MonitorHeader,
  DemonitorHeader,
  DownHeader,
  SpawnHeader,
  RouteFlushHeader,
  HeartbeatHeader,
  NodeDownHeader,
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
});
export const Auth = z.object({ t: z.literal('auth'), mac: z.string().regex(/^[0-9a-f]{64}$/) });
export const AuthOk = z.object({ t: z.literal('ok') });
export const Reject = z.object({ t: z.literal('reject'), code: z.string().max(64), message: z.string().max(1024) });
export const HandshakeMessage = z.discriminatedUnion('t', [Hello, Auth, AuthOk, Reject]);
export type HandshakeMessage = z.infer<typeof HandshakeMessage>;
export type Hello = z.infer<typeof Hello>;

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

/** Build one envelope's text. */
export function envelope(header: object, payload?: string): string {
  const h = JSON.stringify(header);
  return payload === undefined ? h : h + PAYLOAD_SEPARATOR + payload;
}

const isNodeId = (v: unknown): v is string => typeof v === 'string' && v.length >= 1 && v.length <= 256;
const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

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
  if (!isNodeId(h.n) || !isNodeId(h.o) || typeof hops !== 'number' || !Number.isSafeInteger(hops) || hops < 0 || hops > 255) return undefined;
  if (t === 'r') {
    if (!isPosInt(h.c) || (h.k !== 0 && h.k !== 1)) return undefined;
  } else {
    if (!isPosInt(h.a)) return undefined;
    if (t === 'c' && !isPosInt(h.c)) return undefined;
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
  return parseCanonical(text) ?? JSON.parse(text);
}

function parseCanonical(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{"t":"')) return undefined;
  const tEnd = text.indexOf('"', 6);
  if (tEnd < 0 || tEnd > 9) return undefined;
  const t = text.slice(6, tEnd);
  if (!text.startsWith(',"n":"', tEnd + 1)) return undefined;
  const nStart = tEnd + 7;
  const nEnd = text.indexOf('"', nStart);
  if (nEnd < 0) return undefined;
  if (!text.startsWith(',"o":"', nEnd + 1)) return undefined;
  const oStart = nEnd + 7;
  const oEnd = text.indexOf('"', oStart);
  if (oEnd < 0) return undefined;
  const n = text.slice(nStart, nEnd);
  const o = text.slice(oStart, oEnd);
  // An escape means the id holds a quote or a backslash: let JSON.parse unescape it.
  if (t.includes('\\') || n.includes('\\') || o.includes('\\')) return undefined;
  const out: Record<string, unknown> = { t, n, o };
  let i = oEnd + 1;
  const end = text.length - 1;
  if (text.charCodeAt(end) !== 125 /* } */) return undefined;
  while (i < end) {
    // ,"key":digits
    if (text.charCodeAt(i) !== 44 /* , */ || text.charCodeAt(i + 1) !== 34 /* " */) return undefined;
    const kEnd = text.indexOf('"', i + 2);
    if (kEnd < 0 || kEnd > i + 4 || text.charCodeAt(kEnd + 1) !== 58 /* : */) return undefined;
    const key = text.slice(i + 2, kEnd);
    if (key === '__proto__' || key in out) return undefined;
    let j = kEnd + 2;
    const start = j;
    let v = 0;
    for (; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
    }
    const len = j - start;
    // JSON integers: no empty, no leading zero; exact (a safe integer: every step was exact).
    if (len === 0 || len > 16 || v > Number.MAX_SAFE_INTEGER || (len > 1 && text.charCodeAt(start) === 48)) return undefined;
    out[key] = v;
    i = j;
  }
  return i === end ? out : undefined;
}

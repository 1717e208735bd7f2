import { z } from 'zod';

/**
 * Wire protocol version, exchanged in the handshake. Peers with another version are refused
 * with `VERSION_MISMATCH`. See docs/protocol.md.
 */
export const PROTOCOL_VERSION = 5;

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
  /**
   * Short routed headers: 1 when the sender reads the fixed-layout header of routed traffic
   * (`s<h>,<n>,<o>,<a>`…, see docs/protocol.md); only then is it sent them.
   */
  rh: z.literal(1).optional(),
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

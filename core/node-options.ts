import type { AnyActorRef } from './actor-ref.ts';
import type { ErrorReason } from './exit-reason.ts';
import type { TroupeError } from './errors.ts';

/**
 * The limits and timings of a node, every one with a safe default: the part of
 * {@link NodeOptions} that `node.options` reports resolved.
 */
export interface NodeSettings {
  /** The cluster secret every link proves in the handshake (HMAC challenge-response). @default 'troupe-insecure-default' */
  secret?: string;
  /** Default `call` timeout in ms. @default 5000 */
  callTimeout?: number;
  /** Send a heartbeat on an idle link every this many ms. @default 500 */
  heartbeatInterval?: number;
  /** Declare a silent peer down after this many ms. @default 2500 */
  heartbeatTimeout?: number;
  /** A peer must finish the handshake within this many ms. @default 5000 */
  handshakeTimeout?: number;
  /** Largest frame (and so largest single message) in characters. @default 4 MiB */
  maxFrameSize?: number;
  /** Deepest nesting a message may have. @default 64 */
  maxDepth?: number;
  /** Forwarding hop limit. @default 16 */
  hopLimit?: number;
  /** Default mailbox bound per actor; overflow drops the new message with a `deadLetter` event (`MAILBOX_FULL` for calls). @default Infinity */
  maxMailbox?: number;
  /** Most calls this node may have waiting for replies; more reject with `MAILBOX_FULL`. @default 100000 */
  maxPendingCalls?: number;
  /**
   * Flow control: a link holds new envelopes (instead of writing them) while its backlog is
   * above this many bytes/characters — the transport's `bufferedAmount` (socket write buffer),
   * or what the peer has not yet acknowledged, whichever is larger — and resumes below half of
   * it. `Infinity` turns flow control off. @default 1 MiB
   */
  highWaterMark?: number;
  /**
   * Most characters of sends, calls and spawn requests one link holds while its backlog is high.
   * Past it a send is dropped (`deadLetter` `overflow`) and a call or remote spawn rejects with
   * `MAILBOX_FULL`; `send` never throws. Keep it above `maxFrameSize`. @default 16 Mi characters
   */
  maxLinkQueue?: number;
  /**
   * Most characters one link holds for its peer in all — sends, calls, replies, exit and DOWN
   * signals, control — before writing them (docs/security.md, "Bounded outbound"). A peer that
   * makes the link hold more does not read: it is disconnected as stalled (`linkDown` reason
   * `stalled: …`, a `protocolError`) and each envelope held for it is a `deadLetter` `stalled`.
   * What a link holds for a peer is at most this plus `highWaterMark` (in the transport).
   * @default 32 Mi characters
   */
  maxLinkHeld?: number;
  /**
   * A peer that takes nothing of a backlog held above `highWaterMark` for this many ms is
   * disconnected as stalled, like one past `maxLinkHeld` (a peer that stops reading while it
   * keeps sending heartbeats). @default 15000
   */
  writeStallTimeout?: number;
  /** Most links (authenticated or not) this node keeps; connections accepted beyond it are refused at once. @default 1024 */
  maxConnections?: number;
  /** Most accepted connections still in their handshake; more are refused at once (bounds a connection flood). @default 64 */
  maxUnauthenticated?: number;
  /** Send error stacks across the wire in exit reasons and call errors. @default false */
  exposeStacks?: boolean;
  /**
   * Dial nodes this node hears of (membership gossip, addresses carried in refs) so the cluster
   * becomes a mesh and routes shorten. Off: only explicit `connect`/`join` links, everything
   * else is forwarded through them. @default true
   */
  autoConnect?: boolean;
  /** After losing a link it dialed (other than a seed), keep redialing for this many ms. Seeds are redialed forever. @default 10000 */
  reconnectWindow?: number;
}

/** {@link NodeSettings} with every default filled in (`node.options`). */
export type ResolvedOptions = Required<NodeSettings>;

/** Why a message could not be delivered. */
export type DeadLetterReason =
  | 'no-actor'
  | 'unreachable'
  | 'mailbox-full'
  | 'late-reply'
  | 'hop-limit'
  | 'system-message'
  | 'not-serializable'
  | 'frame-too-large'
  | 'no-name'
  | 'overflow'
  /** Held for a peer that stopped reading, which was disconnected (`maxLinkHeld`, `writeStallTimeout`). */
  | 'stalled'
  /** Handed to a link that was lost before the peer confirmed it: it may or may not have arrived. */
  | 'unconfirmed';

/** The events a node emits on `node.events`. */
export interface NodeEvents {
  /** A message was not delivered (the sender was not told: sends never fail). */
  /**
   * A message was not delivered (the sender was not told: sends never fail). `count`: a relay
   * reported dropping this many of this node's messages for node `to` (docs/protocol.md, `dr`).
   */
  deadLetter: {
    to: string;
    reason: DeadLetterReason;
    message?: unknown;
    error?: TroupeError;
    count?: number;
  };
  /** A message failed the target's schema (or could not be decoded). */
  invalidMessage: { to: string; error: TroupeError };
  /** An actor ended by throwing. */
  actorCrashed: { ref: AnyActorRef; reason: ErrorReason };
  /** An authenticated link to a peer came up. */
  linkUp: { node: string; label: string };
  /** A link went down (closed, failed, heartbeat timeout, refused). */
  linkDown: { node: string; label: string; reason: string };
  /** A node became reachable (directly or through a relay). */
  nodeUp: { node: string };
  /** A node became unreachable: its monitors, links, calls and names were settled. */
  nodeDown: { node: string; reason: string };
  /** Bad input from a peer: malformed frame or envelope, failed handshake, oversized frame. */
  protocolError: { error: TroupeError; peer?: string; label?: string };
  /** Two actors claimed one name; `loser` lost it. */
  nameConflict: { name: string; winner: AnyActorRef; loser: AnyActorRef };
  /** A listener threw. */
  listenerError: { error: unknown };
  /** A discovery failed to start or stop (a port in use, no multicast route, …). */
  discoveryError: { discovery: string; error: TroupeError };
}

export const DEFAULTS: ResolvedOptions = {
  secret: 'troupe-insecure-default',
  callTimeout: 5000,
  heartbeatInterval: 500,
  heartbeatTimeout: 2500,
  handshakeTimeout: 5000,
  maxFrameSize: 4 * 1024 * 1024,
  maxDepth: 64,
  hopLimit: 16,
  maxMailbox: Infinity,
  maxPendingCalls: 100_000,
  highWaterMark: 1024 * 1024,
  maxLinkQueue: 16 * 1024 * 1024,
  maxLinkHeld: 32 * 1024 * 1024,
  writeStallTimeout: 15_000,
  maxConnections: 1024,
  maxUnauthenticated: 64,
  exposeStacks: false,
  autoConnect: true,
  reconnectWindow: 10_000,
};

import type { ActorRef } from './actor-ref.ts';
import type { ErrorReason } from './actor.ts';
import type { Clock } from './clock.ts';
import type { TroupeError } from './errors.ts';
import type { Transport } from './transport.ts';

/** Options of {@link createNode}. Every limit has a safe default. */
export interface NodeOptions {
  /** The node id; unique in the cluster. @default a random `node-xxxxxxxx` */
  name?: string;
  /** The cluster secret every link proves in the handshake (HMAC challenge-response). @default 'troupe-insecure-default' */
  secret?: string;
  /** Transports for `connect(address)` and `listen()`. @default [] */
  transports?: Transport[];
  /** Timer source (inject a manual clock in tests). @default the host's timers */
  clock?: Clock;
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

export type ResolvedOptions = Required<Omit<NodeOptions, 'name' | 'transports' | 'clock'>>;


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
  | 'no-name';

/** The events a node emits on `node.events`. */
export interface NodeEvents {
  /** A message was not delivered (the sender was not told: sends never fail). */
  deadLetter: { to: string; reason: DeadLetterReason; message?: unknown; error?: TroupeError };
  /** A message failed the target's schema (or could not be decoded). */
  invalidMessage: { to: string; error: TroupeError };
  /** An actor ended by throwing. */
  actorCrashed: { ref: ActorRef<any, any>; reason: ErrorReason };
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
  nameConflict: { name: string; winner: ActorRef<any, any>; loser: ActorRef<any, any> };
  /** A listener threw. */
  listenerError: { error: unknown };
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
  exposeStacks: false,
  autoConnect: true,
  reconnectWindow: 10_000,
};


/**
 * troupe — a universal actor framework. This entry is the transport-agnostic core; adapters
 * live under their own subpaths (`troupe/memory`, `troupe/tcp`, …).
 */
export { createNode, behaviour, Node } from './node.ts';
export type {
  NodeOptions,
  NodeEvents,
  Behaviour,
  ProcessFn,
  SpawnOptions,
  ChildSpawnOptions,
  RemoteSpawnOptions,
  DeadLetterReason,
} from './node.ts';
export { ActorRef } from './actor-ref.ts';
export type { CallOptions, SendOptions, ChunkOf, MessageOf } from './actor-ref.ts';
export { StreamReader, serveStream, isAsyncIterable } from './stream.ts';
export type { StreamOptions, ServeStreamOptions, StreamHandle } from './stream.ts';
export type { TransferOptions } from './transfer.ts';
export {
  ActorContext,
  Down,
  Exit,
  NameLost,
  Reply,
  reply,
  isDown,
  isExit,
  downOf,
  isErrorReason,
} from './actor.ts';
export type { ExitReason, ErrorReason, SystemMessage, Matcher, ReceiveOptions, ReplyOptions } from './actor.ts';
export { TroupeError, toTroupeError, isErrorCode, ERROR_CODES } from './errors.ts';
export type { ErrorCode, ErrorData } from './errors.ts';
export { createManualClock, systemClock } from './clock.ts';
export type { Clock, ManualClock } from './clock.ts';
export { Emitter } from './events.ts';
export type { Connection, Transport } from './transport.ts';
export type { Discovery } from './discovery.ts';
export type { RegistryBackend, RegistrySink } from './registry.ts';
export { PROTOCOL_VERSION } from './protocol.ts';
export * from './supervisor.ts';

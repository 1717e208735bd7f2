/**
 * troupe — a universal actor framework. This entry is the transport-agnostic core; adapters
 * live under their own subpaths (`troupe/memory`, `troupe/tcp`, …).
 */

export { ActorContext } from './actor-context.ts';
export { Down, downOf, Exit, isDown, isExit, NameLost, Reply, reply } from './messages.ts';
export type { SystemMessage } from './messages.ts';
export { isErrorReason } from './exit-reason.ts';
export type { CustomReason, ErrorReason, ExitReason } from './exit-reason.ts';
export type { ReplyOptions } from './actor-context.ts';
export type { Matcher, ReceiveOptions } from './receive.ts';
export { ActorRef } from './actor-ref.ts';
export type {
  AnyActorRef,
  CallOptions,
  ChunkOf,
  MessageOf,
  ReplyOf,
  SendAwaitOptions,
  SendOptions,
} from './actor-ref.ts';
export type { Clock, ManualClock } from './clock.ts';
export { createManualClock, systemClock } from './clock.ts';
export type { Discovery } from './discovery.ts';
export type { CoreErrorCode, ErrorCode, ErrorCodeExtensions, ErrorData } from './errors.ts';
export { ERROR_CODES, isErrorCode, TroupeError, toTroupeError } from './errors.ts';
export { Emitter } from './events.ts';
export type {
  Behaviour,
  ChildSpawnOptions,
  DeadLetterReason,
  NodeEvents,
  NodeOptions,
  NodeSettings,
  ProcessFn,
  RemoteSpawnOptions,
  SpawnOptions,
} from './node.ts';
export { behaviour, createNode, type Node } from './node.ts';
export { PROTOCOL_VERSION } from './protocol.ts';
export type { RegistryBackend, RegistrySink } from './registry.ts';
export type { ServeStreamOptions, StreamHandle, StreamOptions } from './stream.ts';
export { isAsyncIterable, serveStream } from './stream.ts';
export type { StreamReader } from './stream-reader.ts';
export * from './supervisor.ts';
export type { TransferOptions } from './transfer.ts';
export type { AdmitPeer, Connection, Transport } from './transport.ts';

import type { Clock } from './clock.ts';
import type { ContextHost } from './actor-context.ts';
import type { Emitter } from './events.ts';
import type { TroupeError } from './errors.ts';
import type { Link } from './link.ts';
import type { NodeEvents, ResolvedOptions } from './node-options.ts';
import type { Registry, RegistryBackend } from './registry.ts';
import type { RouterHost } from './router.ts';
import type { SessionBook } from './session.ts';

/**
 * What the runtime needs from the link layer (implemented by the Router): routes, envelopes out,
 * the registry's broadcast and shutdown. @internal
 */
export interface RuntimeWire {
  route(node: string): Link | undefined;
  /** Whether this node sees `node` up (a member, or a route to it). */
  isReachable(node: string): boolean;
  congested(link: Link): TroupeError;
  /** The link whose frame is being decoded now (its transferred objects travel beside it). */
  readonly decodingLink: Link | undefined;
  learnRef(node: string, addrs: string[] | undefined): void;
  addressesFor(node: string): string[] | undefined;
  broadcast(text: string, except?: unknown): void;
  emit(
    node: string,
    header: string,
    payload: string | undefined,
    what: { to: string; message?: unknown; droppable?: boolean },
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined;
  emitTraffic(
    node: string,
    kind: number,
    x: number,
    y: number,
    payload: string,
    to: string,
    message?: unknown,
    droppable?: boolean,
  ): 'unreachable' | 'frame-too-large' | 'overflow' | undefined;
  sendCall(node: string, id: number, callId: number, payload: string): TroupeError | undefined;
  stopRetiring(): void;
  stopSwitches(): void;
  close(): Promise<void>;
}

/** What the link layer is built from (handed to the Router). @internal */
export interface WireParts {
  sessions: SessionBook;
  registry: Registry;
}

/** What a runtime is made with (by the Node). @internal */
export interface RuntimeConfig {
  id: string;
  incarnation: string;
  clock: Clock;
  options: ResolvedOptions;
  events: Emitter<NodeEvents>;
  /** The public facade (what `ctx.node` returns). */
  node: ContextHost['node'];
  /** A shared registry store (`NodeOptions.registry`), if any. */
  registryBackend?: RegistryBackend;
  /** Builds the link layer over the runtime's sessions and registry. */
  wire: (parts: WireParts, host: RouterHost) => RuntimeWire;
}

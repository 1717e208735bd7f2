/**
 * What a link needs from its node ({@link LinkOwnerOf}) and the settings it takes from the node
 * options.
 */
import type { Clock } from './clock.ts';
import type { CloseReason } from './close-reason.ts';
import type { TroupeError } from './errors.ts';

/** Link settings, taken from the node options. */
export interface LinkSettings {
  secret: string;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  handshakeTimeout: number;
  maxFrameSize: number;
  /** Hold envelopes while the link's backlog (see `Link.backlog`) is above this. */
  highWaterMark: number;
  /** Most characters of droppable envelopes (sends, calls, spawns) a link holds; more are refused. */
  maxLinkQueue: number;
  /** Most characters a link holds for its peer in all (replies and signals too); past it the peer is stalled. */
  maxLinkHeld: number;
  /** A peer that takes nothing of a held backlog for this long (ms) is stalled. */
  writeStallTimeout: number;
}

/** Why envelopes a link had taken were not confirmed by the peer (see {@link LinkOwnerOf.onLinkLost}). */
export type LostReason = 'stalled' | 'unconfirmed';

/** What a link (`L`, the Link class: see `LinkOwner` in core/link.ts) needs from its node. @internal */
export interface LinkOwnerOf<L> {
  readonly id: string;
  readonly incarnation: string;
  readonly clock: Clock;
  listenAddresses(): string[];
  linkSettings(): LinkSettings;
  onLinkUp(link: L): void;
  onLinkFrame(link: L, frame: string): void;
  onLinkDown(link: L, reason: CloseReason): void;
  onLinkError(link: L, error: TroupeError): void;
  /**
   * The link is gone (or stalled) while holding envelopes the peer had not confirmed: never
   * written, or written and not acknowledged. Each may or may not have arrived.
   */
  onLinkLost(link: L, envelopes: string[], reason: LostReason): void;
  /**
   * The peer proved its secret: whether it may take the id it claims (the reason to refuse it,
   * or undefined). Asked before `ok` is sent, so a refused peer never has a link.
   */
  admit(link: L): string | undefined;
}

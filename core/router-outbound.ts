import { DIRECT_CALL } from './envelope.ts';
import { type TrafficHeaders, directHeader } from './envelope-write.ts';
import { TroupeError } from './errors.ts';
import type { DeadLetterReason } from './node-options.ts';
import { PAYLOAD_SEPARATOR } from './protocol.ts';

/** What sending needs of a link. */
export interface OutLink {
  readonly peer: string;
  /** Whether the peer reads short routed headers (else routed traffic goes in JSON). */
  readonly shortRouted: boolean;
  enqueue(text: string, droppable?: boolean): boolean;
}

/** Why an envelope did not leave (it was reported as a dead letter). */
export type EmitFailure = 'unreachable' | 'frame-too-large' | 'overflow';

/** What the outbound side needs from its router and node. @internal */
export interface OutboundHost<L extends OutLink> {
  readonly maxFrameSize: number;
  readonly maxLinkQueue: number;
  readonly autoConnect: boolean;
  readonly headers: TrafficHeaders;
  route(node: string): L | undefined;
  /** Dial `node` directly if it can be (autoConnect). */
  autoDial(node: string): void;
  /** Hold `text` for `node` while its route switches; false if it may go now. */
  hold(node: string, text: string): boolean;
  /** Put `text` for `node` on `link` (held while a member's link is in its handshake); false if refused. */
  put(link: L, node: string, text: string, droppable: boolean): boolean;
  /** Whether anyone listens for dead letters (building their errors costs). */
  hasDeadLetterListener(): boolean;
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
}

/**
 * Envelopes out (a part of the Router): each leaves on its route's link, traffic in the direct
 * form when that link is the target's own; a failure is a dead letter. @internal
 */
export class Outbound<L extends OutLink> {
  readonly #host: OutboundHost<L>;
  /** The error reported with `overflow` dead letters, one per link. */
  #overflowErrors = new WeakMap<L, TroupeError>();

  constructor(host: OutboundHost<L>) {
    this.#host = host;
  }

  /**
   * Route one envelope; reports a failure as a dead letter and returns why (undefined when it
   * left). `droppable` (sends, spawn requests): refused while the link is congested.
   */
  emit(
    node: string,
    header: string,
    payload: string | undefined,
    what: { to: string; message?: unknown; droppable?: boolean },
  ): EmitFailure | undefined {
    const link = this.#host.route(node);
    if (!link) {
      this.#host.deadLetter(what.to, 'unreachable', what.message);
      return 'unreachable';
    }
    return this.#emitOn(
      link,
      node,
      payload === undefined ? header : header + PAYLOAD_SEPARATOR + payload,
      what.to,
      what.message,
      what.droppable === true,
    );
  }

  /**
   * Route a traffic envelope (`kind` DIRECT_SEND: to actor `x`; DIRECT_REPLY: for call `x`, ok
   * `y`): in the direct form on the node's own link, else in the short routed form where the
   * link's peer reads it, else in JSON. As {@link emit}, with its
   * dead-letter fields as arguments (no object per message).
   */
  emitTraffic(
    node: string,
    kind: number,
    x: number,
    y: number,
    payload: string,
    to: string,
    message?: unknown,
    droppable = false,
  ): EmitFailure | undefined {
    const link = this.#host.route(node);
    if (!link) {
      this.#host.deadLetter(to, 'unreachable', message);
      return 'unreachable';
    }
    const header =
      link.peer === node
        ? directHeader(kind, x, y)
        : link.shortRouted
          ? this.#host.headers.short(kind, node, x, y)
          : this.#host.headers.json(kind, node, x, y);
    return this.#emitOn(link, node, header + PAYLOAD_SEPARATOR + payload, to, message, droppable);
  }

  #emitOn(
    link: L,
    node: string,
    text: string,
    to: string,
    message: unknown,
    droppable: boolean,
  ): 'frame-too-large' | 'overflow' | undefined {
    const host = this.#host;
    if (link.peer !== node && host.autoConnect) host.autoDial(node);
    if (text.length > host.maxFrameSize) {
      host.deadLetter(to, 'frame-too-large', message, tooLarge(text));
      return 'frame-too-large';
    }
    if (host.hold(node, text)) return undefined;
    if (!host.put(link, node, text, droppable)) {
      if (host.hasDeadLetterListener()) {
        // A flood of refused sends must stay cheap: one error (a stack capture) per link, reused.
        let error = this.#overflowErrors.get(link);
        if (!error) this.#overflowErrors.set(link, (error = this.congested(link)));
        host.deadLetter(to, 'overflow', message, error);
      }
      return 'overflow';
    }
    return undefined;
  }

  /**
   * Send call `callId` to actor `id` of `node` (a reachable node); an error when the envelope is
   * too large or the link congested.
   */
  sendCall(node: string, id: number, callId: number, payload: string): TroupeError | undefined {
    const host = this.#host;
    const link = host.route(node)!;
    const header =
      link.peer === node
        ? directHeader(DIRECT_CALL, id, callId)
        : link.shortRouted
          ? host.headers.short(DIRECT_CALL, node, id, callId)
          : host.headers.json(DIRECT_CALL, node, id, callId);
    const text = header + PAYLOAD_SEPARATOR + payload;
    if (text.length > host.maxFrameSize) return tooLarge(text);
    if (host.hold(node, text)) return undefined;
    return host.put(link, node, text, true) ? undefined : this.congested(link);
  }

  /** The error for an envelope a congested link refused (see `maxLinkQueue`). */
  congested(link: L): TroupeError {
    return new TroupeError(
      'MAILBOX_FULL',
      `link to ${link.peer} is congested: its queue is full (maxLinkQueue ${this.#host.maxLinkQueue} chars)`,
    );
  }
}

function tooLarge(text: string): TroupeError {
  return new TroupeError(
    'FRAME_TOO_LARGE',
    `message of ${text.length} chars exceeds the frame limit`,
  );
}

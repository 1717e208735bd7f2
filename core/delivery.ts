import type { Actor } from './actor.ts';
import type { AnyActorRef, SendOptions } from './actor-ref.ts';
import type { Codec } from './codec.ts';
import { DIRECT_SEND } from './envelope.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import type { CreditBook } from './flow-credit.ts';
import { CallEnvelope, FlowItem } from './messages.ts';
import type { DeadLetterReason, NodeEvents, ResolvedOptions } from './node-options.ts';
import type { RuntimeWire } from './runtime-wire.ts';
import {
  CLONE_PREFIX,
  decodeCloned,
  decodeTransfer,
  encodeTransfer,
  TRANSFER_PREFIX,
} from './transfer.ts';

/** What delivery needs from its runtime. @internal */
export interface DeliveryHost {
  readonly id: string;
  readonly events: Emitter<NodeEvents>;
  readonly actors: ReadonlyMap<number, Actor>;
  readonly codec: Codec;
  readonly options: Pick<ResolvedOptions, 'maxDepth'>;
  readonly credit: CreditBook;
  readonly wire: Pick<RuntimeWire, 'route' | 'emitTraffic' | 'decodingLink'>;
  replyError(node: string, callId: number, error: TroupeError): void;
  deadLetter(to: string, reason: DeadLetterReason, message?: unknown, error?: TroupeError): void;
}

/**
 * Delivery (a part of the runtime): messages into this node's mailboxes — from local senders
 * and from the router (`s`, awaited `s`, `c`) — validated by the actor's schema where it checks
 * on arrival, and sends out to other nodes; encoding and decoding of payloads. @internal
 */
export class Delivery {
  readonly #h: DeliveryHost;

  constructor(host: DeliveryHost) {
    this.#h = host;
  }

  /** encode `value` for `to`; undefined (and a `not-serializable` dead letter) if it cannot be. */
  encode(value: unknown, to: string): string | undefined {
    try {
      return this.#h.codec.encode(value);
    } catch (err) {
      this.#h.deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** decode a payload for `to`; a failure is reported as an `invalidMessage` event. */
  decodePayload(
    payload: string | undefined,
    to: string,
  ): { ok: true; value: unknown } | { ok: false; error: TroupeError } {
    if (payload === undefined) return { ok: true, value: undefined };
    try {
      return { ok: true, value: this.decode(payload) };
    } catch (err) {
      const error = toTroupeError(err, 'INVALID_MESSAGE');
      this.#h.events.emit('invalidMessage', { to, error });
      return { ok: false, error };
    }
  }

  /** */
  inSend(id: number, origin: string, payload: string | undefined): void {
    const actor = this.#h.actors.get(id);
    if (!actor) {
      this.#h.deadLetter(`${this.#h.id}/${id}`, 'no-actor');
      return;
    }
    // The hot path: decode without a result object per message.
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.decode(payload);
    } catch (err) {
      this.#h.events.emit('invalidMessage', {
        to: actor.ref.key,
        error: toTroupeError(err, 'INVALID_MESSAGE'),
      });
      return;
    }
    this.deliver(actor, msg, 0, origin);
  }

  /**
   * An awaited send: into the mailbox unbounded (its sender's credit bounds it), credited back
   * when the actor takes it; credited back at once when it cannot be delivered.
   */
  inFlow(id: number, origin: string, payload: string | undefined): void {
    const bytes = payload?.length ?? 0;
    const actor = this.#h.actors.get(id);
    if (!actor) {
      this.#h.deadLetter(`${this.#h.id}/${id}`, 'no-actor');
      return this.#h.credit.taken(origin, bytes);
    }
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.decode(payload);
    } catch (err) {
      this.#h.events.emit('invalidMessage', {
        to: actor.ref.key,
        error: toTroupeError(err, 'INVALID_MESSAGE'),
      });
      return this.#h.credit.taken(origin, bytes);
    }
    if (actor.schema !== undefined && actor.validatesOnArrival) {
      const r = actor.schema.safeParse(msg);
      if (!r.success) {
        this.#invalidReply(actor, r.error.issues, 0, origin);
        return this.#h.credit.taken(origin, bytes);
      }
      msg = r.data;
    }
    actor.enqueue(new FlowItem(msg, origin, bytes), false);
  }

  /** */
  inCall(id: number, origin: string, callId: number, payload: string | undefined): void {
    const actor = this.#h.actors.get(id);
    if (!actor) {
      this.#h.replyError(
        origin,
        callId,
        new TroupeError('NO_ACTOR', `no actor ${this.#h.id}/${id}`),
      );
      return;
    }
    // As inSend: no result object per call.
    let msg: unknown;
    try {
      msg = payload === undefined ? undefined : this.decode(payload);
    } catch (err) {
      const error = toTroupeError(err, 'INVALID_MESSAGE');
      this.#h.events.emit('invalidMessage', { to: actor.ref.key, error });
      this.#h.replyError(origin, callId, error);
      return;
    }
    this.deliver(actor, msg, callId, origin);
  }

  /** RefHost */
  sendTo(ref: AnyActorRef, msg: unknown, options?: SendOptions): void {
    if (ref.node === this.#h.id) {
      const actor = this.#h.actors.get(ref.id);
      if (actor === undefined) {
        this.#h.deadLetter(ref.key, 'no-actor', msg);
        return;
      }
      this.deliver(actor, msg, 0, this.#h.id);
      return;
    }
    const payload =
      options?.transfer === undefined
        ? this.encode(msg, ref.key)
        : this.encodeFor(ref.node, msg, options.transfer, ref.key);
    if (payload === undefined) return;
    this.#h.wire.emitTraffic(ref.node, DIRECT_SEND, ref.id, 0, payload, ref.key, msg, true);
    if (options?.transfer !== undefined) this.postMoved(ref.node);
  }

  /**
   * After an envelope with a transfer list went to `node`'s link: post what the link may write
   * now, with the objects staged by {@link encodeFor}, so they leave (and the sender's buffers
   * detach) before the send returns. The envelope itself may stay in the link (held behind a
   * backlog); its objects then wait for it at the peer.
   */
  postMoved(node: string): void {
    const link = this.#h.wire.route(node);
    if (link?.peer === node) link.postStaged();
  }

  /**
   * Encode `value` for `node` with a transfer list: its objects travel beside the envelope when
   * the node is a direct peer over a link that can move them, else the value is copied whole.
   * `to` set: a failure is a `not-serializable` dead letter (undefined); unset: it throws.
   */
  encodeFor(
    node: string,
    value: unknown,
    transfer: readonly object[],
    to?: string,
  ): string | undefined {
    try {
      const link = this.#h.wire.route(node);
      const conn = link?.peer === node ? link.conn : undefined;
      return (
        encodeTransfer(conn, value, transfer, (v) => this.#h.codec.encode(v)) ??
        this.#h.codec.encode(value)
      );
    } catch (err) {
      if (to === undefined) throw toTroupeError(err, 'SERIALIZATION');
      this.#h.deadLetter(to, 'not-serializable', value, toTroupeError(err, 'SERIALIZATION'));
      return undefined;
    }
  }

  /** Decode an incoming payload (one whose objects travel beside it takes them from its link). */
  decode(payload: string): unknown {
    const c = payload.charCodeAt(0);
    if (c !== TRANSFER_PREFIX && c !== CLONE_PREFIX) return this.#h.codec.decode(payload);
    const conn = this.#h.wire.decodingLink?.conn;
    if (c === CLONE_PREFIX) return decodeCloned(payload, conn, this.#h.options.maxDepth);
    return decodeTransfer(payload, conn, (p) => this.#h.codec.decode(p));
  }

  /**
   * Validate and put a message in an actor's mailbox. `callId` 0 means a plain send.
   */
  deliver(actor: Actor, msg: unknown, callId: number, replyNode: string): void {
    const schema = actor.schema;
    // Behaviours validate when they take the message (see Actor); processes on arrival.
    if (schema !== undefined && actor.validatesOnArrival) {
      const r = schema.safeParse(msg);
      if (!r.success) {
        this.#invalidReply(actor, r.error.issues, callId, replyNode);
        return;
      }
      msg = r.data;
    }
    const item = callId ? new CallEnvelope(msg, callId, replyNode) : msg;
    if (!actor.enqueue(item)) {
      // A flood into a full mailbox must stay cheap: build the error (a stack capture) only if used.
      if (!callId && !this.#h.events.has('deadLetter')) return;
      const error = new TroupeError(
        'MAILBOX_FULL',
        `mailbox of ${actor.ref.key} is full (${actor.maxMailbox})`,
      );
      this.#h.deadLetter(actor.ref.key, 'mailbox-full', msg, error);
      if (callId) this.#h.replyError(replyNode, callId, error);
    }
  }

  #invalidReply(actor: Actor, issues: unknown, callId: number, replyNode: string): void {
    const error = new TroupeError(
      'INVALID_MESSAGE',
      `message rejected by the schema of ${actor.ref.key}`,
      { details: issues },
    );
    this.#h.events.emit('invalidMessage', { to: actor.ref.key, error });
    if (callId) this.#h.replyError(replyNode, callId, error);
  }

  /** a behaviour's schema rejected a message it took from its mailbox */
  invalid(actor: Actor, issues: unknown, call: CallEnvelope | undefined): void {
    if (call) call.done = true;
    this.#invalidReply(actor, issues, call?.callId ?? 0, call?.replyNode ?? this.#h.id);
  }
}

import type { Actor } from './actor.ts';
import type { ActorLinks } from './actor-links.ts';
import {
  ActorRef,
  type AnyActorRef,
  type CallOptions,
  type SendAwaitOptions,
} from './actor-ref.ts';
import type { BehaviourTable, ProcessFn, SpawnOptions } from './behaviour.ts';
import type { CallStart, CallTable } from './call-table.ts';
import type { Codec } from './codec.ts';
import type { Delivery } from './delivery.ts';
import type { SpawnRequest } from './envelope-read.ts';
import { DIRECT_REPLY } from './envelope.ts';
import { writeAwaitedSend, writeCancel, writeSpawn } from './envelope-write.ts';
import { type ErrorData, TroupeError, toTroupeError } from './errors.ts';
import type { CreditBook } from './flow-credit.ts';
import type { CallEnvelope } from './messages.ts';
import type { ResolvedOptions } from './node-options.ts';
import type { RuntimeWire } from './runtime-wire.ts';
import type { SessionBook } from './session.ts';
import { isAsyncIterable, serveStream } from './stream-serve.ts';

/** What calls need from their runtime. @internal */
export interface CallsHost {
  readonly id: string;
  readonly options: ResolvedOptions;
  /** The public facade (streams are served through it). */
  readonly node: Parameters<typeof serveStream>[0];
  readonly actors: ReadonlyMap<number, Actor>;
  readonly codec: Codec;
  readonly credit: CreditBook;
  readonly calls: CallTable;
  readonly behaviourTable: BehaviourTable;
  readonly actorLinks: ActorLinks;
  readonly sessions: SessionBook;
  readonly wire: RuntimeWire;
  readonly isShutdown: boolean;
  /** The actor running now, if any. */
  readonly running: Actor | undefined;
  /** The id the next local actor takes. */
  readonly nextActorId: number;
  ref(node: string, id: number): AnyActorRef;
  spawnLocal(
    what: ProcessFn<any>,
    options: SpawnOptions,
    remoteWatch?: { mid: string; watcher: AnyActorRef },
  ): AnyActorRef;
  inCancel(id: number, origin: string, callId: number): void;
  deadLetter(to: string, reason: 'late-reply'): void;
}

/**
 * Calls (a part of the runtime): calls out and their replies (the CallTable holds the pending
 * ones), answers to calls into this node, awaited sends under credit, and spawns on other
 * nodes (and of other nodes here). @internal
 */
export class Calls {
  readonly #h: CallsHost;
  readonly #d: Delivery;

  constructor(host: CallsHost, delivery: Delivery) {
    this.#h = host;
    this.#d = delivery;
  }

  /** Starts a call to a local actor: its message goes into the mailbox (one closure per node). */
  readonly #startLocal: CallStart<Actor, unknown> = (callId, actor, msg) => {
    this.#d.deliver(actor, msg, callId, this.#h.id);
    return undefined;
  };

  /** Starts a call to another node's actor: a `c` envelope on the route to it. */
  readonly #startRemote: CallStart<AnyActorRef, string> = (callId, ref, payload) =>
    this.#h.wire.sendCall(ref.node, ref.id, callId, payload);

  /** */
  inReply(callId: number, ok: 0 | 1, payload: string | undefined): void {
    if (!this.#h.calls.has(callId)) {
      this.#h.deadLetter(`${this.#h.id}#call${callId}`, 'late-reply');
      return;
    }
    let value: unknown;
    try {
      value = payload === undefined ? undefined : this.#d.decode(payload);
    } catch (err) {
      this.#h.calls.settle(callId, false, toTroupeError(err, 'INVALID_MESSAGE'));
      return;
    }
    this.#h.calls.settle(callId, ok === 1, ok === 1 ? value : TroupeError.fromData(value));
  }

  /** */
  inSpawn(request: SpawnRequest, payload: string | undefined): void {
    const { origin, callId, behaviour, monitor } = request;
    const d = this.#d.decodePayload(payload, `${this.#h.id}:spawn:${behaviour}`);
    if (!d.ok) return this.replyError(origin, callId, d.error);
    const watcher = request.watcher ? this.#h.ref(origin, request.watcher) : undefined;
    let def: { impl: ProcessFn<any>; args: unknown };
    try {
      if (this.#h.isShutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
      def = this.#h.behaviourTable.resolve(behaviour, d.value);
    } catch (err) {
      return this.replyError(origin, callId, toTroupeError(err));
    }
    // Reply before the actor runs: the caller sets up its side of the monitor/link when the
    // reply arrives, so a DOWN or EXIT from a failing init must follow the reply on the wire
    // (it then carries the real reason, not `noproc`). The ref is the id #spawnLocal takes next.
    const out = this.#d.encode(this.#h.ref(this.#h.id, this.#h.nextActorId), origin);
    if (out !== undefined) this.#h.wire.emitTraffic(origin, DIRECT_REPLY, callId, 1, out, origin);
    this.#h.spawnLocal(
      def.impl,
      { args: def.args, link: request.link && watcher ? watcher : undefined },
      monitor && watcher ? { mid: monitor, watcher } : undefined,
    );
  }

  /** Spawn behaviour `name` here; `link`/`monitor` (a local watcher) are set before it runs. */
  #spawnDefined(
    name: string,
    args: unknown,
    link: AnyActorRef | undefined,
    monitor?: AnyActorRef,
  ): AnyActorRef {
    const def = this.#h.behaviourTable.resolve(name, args);
    return this.#h.spawnLocal(def.impl, { args: def.args, link, monitor });
  }

  /** */
  spawnRemote(
    nodeId: string,
    name: string,
    args: unknown,
    from: Actor | undefined,
    opts: { link?: boolean; monitor?: boolean; timeout?: number },
  ): Promise<AnyActorRef> {
    if (nodeId === this.#h.id) {
      try {
        const ref = this.#spawnDefined(
          name,
          args,
          opts.link && from ? from.ref : undefined,
          opts.monitor && from ? from.ref : undefined,
        );
        return Promise.resolve(ref);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (!this.#h.wire.route(nodeId))
      return Promise.reject(new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`));
    let payload: string;
    try {
      payload = this.#h.codec.encode(args);
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    const mid = opts.monitor && from ? this.#h.actorLinks.newMonitorId() : '';
    return this.pending(
      nodeId,
      opts.timeout,
      (callId) => {
        const e = this.#h.sessions.current(nodeId);
        const head = writeSpawn(nodeId, this.#h.id, callId, name, {
          watcher: from?.id ?? 0,
          link: !!(opts.link && from),
          monitor: mid,
          session: e,
        });
        const failed = this.#h.wire.emit(nodeId, head, payload, {
          to: `${nodeId}:spawn:${name}`,
          droppable: true,
        });
        if (failed === 'unreachable')
          return new TroupeError('NODE_DOWN', `node ${nodeId} is not reachable`);
        if (failed === 'frame-too-large')
          return new TroupeError(
            'FRAME_TOO_LARGE',
            `arguments of the spawn of "${name}" exceed the frame limit`,
          );
        if (failed === 'overflow') return this.#h.wire.congested(this.#h.wire.route(nodeId)!);
        return undefined;
      },
      undefined,
      undefined,
      (value) => {
        // Runs synchronously on the reply, before any DOWN/EXIT that follows it on the wire.
        if (!(value instanceof ActorRef) || !from || !from.alive) return;
        this.#h.actorLinks.spawned(from, value, !!opts.link, mid);
      },
    ) as Promise<AnyActorRef>;
  }

  /**
   * RefHost: an awaited send. Waits for end-to-end credit toward the target's node (granted
   * back as the target takes the messages), then sends, never dropped for congestion.
   */
  async sendAwaitTo(ref: AnyActorRef, msg: unknown, options?: SendAwaitOptions): Promise<void> {
    if (this.#h.isShutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
    const signal = options?.signal;
    if (signal?.aborted) throw new TroupeError('ABORTED', 'send aborted', { cause: signal.reason });
    if (ref.node === this.#h.id) {
      const actor = this.#h.actors.get(ref.id);
      if (actor === undefined) throw new TroupeError('NO_ACTOR', `no actor ${ref.key}`);
      this.#d.deliver(actor, msg, 0, this.#h.id);
      return;
    }
    if (!this.#h.wire.route(ref.node))
      throw new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`);
    let payload: string;
    try {
      payload =
        options?.transfer === undefined
          ? this.#h.codec.encode(msg)
          : this.#d.encodeFor(ref.node, msg, options.transfer)!;
    } catch (err) {
      throw toTroupeError(err, 'SERIALIZATION');
    }
    const bytes = payload.length;
    const wait = this.#h.credit.acquire(ref.node, bytes, signal);
    if (wait !== undefined) {
      // The objects of a transfer list leave now (the buffers detach as the call returns); the
      // envelope follows when there is credit, and the peer keeps them until it comes.
      if (options?.transfer !== undefined) this.#d.postMoved(ref.node);
      await wait;
    }
    const header = writeAwaitedSend(ref.node, this.#h.id, ref.id);
    const failed = this.#h.wire.emit(ref.node, header, payload, { to: ref.key, message: msg });
    if (options?.transfer !== undefined) this.#d.postMoved(ref.node);
    if (failed === undefined) return;
    this.#h.credit.release(ref.node, bytes);
    if (failed === 'frame-too-large')
      throw new TroupeError(
        'FRAME_TOO_LARGE',
        `message of ${payload.length} chars exceeds the frame limit`,
      );
    throw new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`);
  }

  /** */
  call(
    ref: AnyActorRef,
    msg: unknown,
    options: CallOptions | undefined,
    from: Actor | undefined,
  ): Promise<unknown> {
    const caller = from ?? this.#h.running;
    if (caller && ref.node === this.#h.id && ref.id === caller.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    const signal = options?.signal;
    if (ref.node === this.#h.id) {
      const actor = this.#h.actors.get(ref.id);
      if (!actor) return Promise.reject(new TroupeError('NO_ACTOR', `no actor ${ref.key}`));
      const cancel = signal && {
        signal,
        cancel: (callId: number) => this.#h.inCancel(ref.id, this.#h.id, callId),
      };
      return this.pending(
        this.#h.id,
        options?.timeout,
        this.#startLocal,
        actor,
        msg,
        undefined,
        cancel,
      );
    }
    if (!this.#h.wire.route(ref.node))
      return Promise.reject(new TroupeError('NODE_DOWN', `node ${ref.node} is not reachable`));
    let payload: string;
    try {
      payload =
        options?.transfer === undefined
          ? this.#h.codec.encode(msg)
          : this.#d.encodeFor(ref.node, msg, options.transfer)!;
    } catch (err) {
      return Promise.reject(toTroupeError(err, 'SERIALIZATION'));
    }
    // A cancelled call tells the callee (`ca`), so it drops the call and aborts `ctx.signal`.
    const cancel = signal && {
      signal,
      cancel: (callId: number) => {
        this.#h.wire.emit(ref.node, writeCancel(ref.node, this.#h.id, ref.id, callId), undefined, {
          to: ref.key,
        });
      },
    };
    const pending = this.pending(
      ref.node,
      options?.timeout,
      this.#startRemote,
      ref,
      payload,
      undefined,
      cancel,
    );
    if (options?.transfer !== undefined) this.#d.postMoved(ref.node);
    return pending;
  }

  /** Register a pending call, then run `start(callId)`; a returned error rejects at once. */
  pending<A = undefined, B = undefined>(
    target: string,
    timeout: number | undefined,
    start: CallStart<A, B>,
    a: A,
    b: B,
    onReply?: (v: unknown) => void,
    abort?: { signal: AbortSignal; cancel: (callId: number) => void },
  ): Promise<unknown> {
    if (this.#h.calls.size >= this.#h.options.maxPendingCalls) {
      return Promise.reject(
        new TroupeError(
          'MAILBOX_FULL',
          `node ${this.#h.id} has ${this.#h.calls.size} calls pending (maxPendingCalls)`,
        ),
      );
    }
    return this.#h.calls.open(
      target,
      timeout ?? this.#h.options.callTimeout,
      start,
      a,
      b,
      onReply,
      abort,
    );
  }

  /** answer a call */
  reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void {
    call.done = true;
    // A handler that answers with an async iterable serves a stream (see core/stream-serve.ts).
    if (ok && isAsyncIterable(value)) value = serveStream(this.#h.node, value);
    this.replyTo(call.replyNode, call.callId, ok, value, transfer);
  }

  replyTo(
    node: string,
    callId: number,
    ok: boolean,
    value: unknown,
    transfer?: readonly object[],
  ): void {
    if (node === this.#h.id) {
      this.#h.calls.settle(callId, ok, value);
      return;
    }
    if (!ok) {
      this.replyError(node, callId, value as TroupeError);
      return;
    }
    let payload: string;
    try {
      payload =
        transfer === undefined
          ? this.#h.codec.encode(value)
          : this.#d.encodeFor(node, value, transfer)!;
    } catch (err) {
      this.replyError(node, callId, toTroupeError(err, 'SERIALIZATION'));
      return;
    }
    this.#h.wire.emitTraffic(node, DIRECT_REPLY, callId, 1, payload, node);
    if (transfer !== undefined) this.#d.postMoved(node);
  }

  /** reject call `callId` of `node` with `error` */
  replyError(node: string, callId: number, error: TroupeError): void {
    if (node === this.#h.id) {
      this.#h.calls.settle(callId, false, error);
      return;
    }
    const payload = this.#h.codec.encode(
      error.toData(this.#h.options.exposeStacks) as unknown as ErrorData,
    );
    this.#h.wire.emitTraffic(node, DIRECT_REPLY, callId, 0, payload, node);
  }
}

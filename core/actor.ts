import type { MessageSchema } from './schema-check.ts';
import { aborted } from './abort.ts';
import { ActorContext, type ActorHost, type ReplyOptions } from './actor-context.ts';
import type { AnyActorRef } from './actor-ref.ts';
import { type Behaviour, isThenable, type ProcessFn } from './behaviour.ts';
import { TroupeError } from './errors.ts';
import { errorReason } from './exit-reason.ts';
import { ActorExtras, dropQueuedCall } from './actor-extras.ts';
import { Mailbox } from './mailbox.ts';
import { type Matcher, match, NO_MATCH, type ReceiveOptions, waitFor } from './receive.ts';
import {
  type CallEnvelope,
  type FlowItem,
  K_CALL,
  K_FLOW,
  K_REPLY,
  K_SYSTEM,
  kindOf,
  messageOf,
  type Reply,
  type SystemMessage,
} from './messages.ts';

type Extras = ActorExtras<CallEnvelope, ActorContext, AnyActorRef>;
// Bits of Actor#flags.
const F_BEHAVIOUR = 1;
const F_READY = 2;
const F_BUSY = 4;
const F_TRAP = 8;

/**
 * One actor: a mailbox plus either an async process function (selective receive) or a
 * behaviour (`init`/`handle`). Everything but the essentials is allocated lazily (the mailbox on
 * the first message, links/monitors/names in {@link ActorExtras}): an idle actor is a few fields.
 *
 * Validation: a behaviour validates a message against its schema when it takes it out of the
 * mailbox (so a burst does not keep validated copies alive); a process validates on arrival,
 * because selective receive matches on validated messages.
 * @internal
 */
export class Actor {
  readonly id: number;
  readonly host: ActorHost<Actor>;
  readonly ref: AnyActorRef;
  alive = true;
  /** Scheduled on the node's run queue. */
  scheduled = false;
  schema: MessageSchema | undefined = undefined;
  /** Mailbox bound; undefined = unbounded. */
  limit: number | undefined;

  #flags: number;
  #mb: Mailbox | undefined = undefined;
  #behaviour: Behaviour<any, any, any> | undefined = undefined;
  #state: unknown = undefined;
  #x: Extras | undefined = undefined;

  constructor(
    host: ActorHost<Actor>,
    id: number,
    ref: AnyActorRef,
    kind: 'process' | 'behaviour',
    maxMailbox: number,
  ) {
    this.host = host;
    this.id = id;
    this.ref = ref;
    this.#flags = kind === 'process' ? 0 : F_BEHAVIOUR;
    this.limit = maxMailbox === Infinity ? undefined : maxMailbox;
  }

  #extras(): Extras {
    return (this.#x ??= new ActorExtras());
  }

  get maxMailbox(): number {
    return this.limit ?? Infinity;
  }
  get trapExit(): boolean {
    return (this.#flags & F_TRAP) !== 0;
  }
  set trapExit(on: boolean) {
    this.#flags = on ? this.#flags | F_TRAP : this.#flags & ~F_TRAP;
  }
  get links(): Map<string, AnyActorRef> | undefined {
    return this.#x?.links;
  }
  set links(v: Map<string, AnyActorRef> | undefined) {
    this.#extras().links = v;
  }
  /** Monitors this actor holds: monitor id → target. */
  get monitors(): Map<string, AnyActorRef> | undefined {
    return this.#x?.monitors;
  }
  set monitors(v: Map<string, AnyActorRef> | undefined) {
    this.#extras().monitors = v;
  }
  /** Monitors on this actor: monitor id → watcher. */
  get watchers(): Map<string, AnyActorRef> | undefined {
    return this.#x?.watchers;
  }
  set watchers(v: Map<string, AnyActorRef> | undefined) {
    this.#extras().watchers = v;
  }
  get names(): string[] | undefined {
    return this.#x?.names;
  }
  set names(v: string[] | undefined) {
    this.#extras().names = v;
  }

  /** The context object handed to user code (created on first use). */
  get ctx(): ActorContext {
    const x = this.#extras();
    return (x.ctx ??= new ActorContext(this));
  }

  get mailboxSize(): number {
    return this.#mb === undefined ? 0 : this.#mb.size;
  }

  /** Whether messages are validated on arrival (processes) rather than when handled (behaviours). */
  get validatesOnArrival(): boolean {
    return (this.#flags & F_BEHAVIOUR) === 0;
  }

  /** Start a process function. */
  startProcess(fn: ProcessFn<any>): void {
    this.#flags |= F_READY;
    let p: Promise<unknown>;
    try {
      p = Promise.resolve(fn(this.ctx));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (result) => this.host.exit(this, 'normal', result),
      (err) => {
        if (this.alive) this.host.exit(this, errorReason(err, this.host.exposeStacks));
      },
    );
  }

  /** Start a behaviour: run `init`, then drain what queued meanwhile. */
  startBehaviour(b: Behaviour<any, any, any>, args: unknown): void {
    this.#behaviour = b;
    let init: unknown;
    try {
      init = b.init ? b.init(args, this.ctx) : undefined;
    } catch (err) {
      this.host.exit(this, errorReason(err, this.host.exposeStacks));
      return;
    }
    if (isThenable(init)) {
      this.#flags |= F_BUSY;
      init.then(
        (s) => {
          this.#flags = (this.#flags & ~F_BUSY) | F_READY;
          this.#state = s;
          if (this.alive && this.mailboxSize > 0) this.host.schedule(this);
        },
        (err) => this.#crash(err),
      );
    } else {
      this.#state = init;
      this.#flags |= F_READY;
      if (this.mailboxSize > 0) this.host.schedule(this);
    }
  }

  /** Put a message or call in the mailbox. Returns false when the mailbox is full. */
  enqueue(item: unknown, bounded = true): boolean {
    const flags = this.#flags;
    if ((flags & F_BEHAVIOUR) === 0) {
      const w = this.#x?.waiter;
      if (w !== undefined) {
        const m = match(w.matcher, messageOf(item));
        if (m !== NO_MATCH) {
          this.#x!.waiter = undefined;
          if (w.timer !== undefined) this.host.clock.clearTimeout(w.timer);
          w.off?.();
          this.#take(item);
          w.resolve(m);
          return true;
        }
      }
    }
    let mb = this.#mb;
    if (mb === undefined) mb = this.#mb = new Mailbox();
    else if (bounded && this.limit !== undefined && mb.size >= this.limit) return false;
    mb.push(item);
    if ((flags & (F_BEHAVIOUR | F_READY | F_BUSY)) === (F_BEHAVIOUR | F_READY) && !this.scheduled)
      this.host.schedule(this);
    return true;
  }

  /**
   * Put a system message in the mailbox. Never bounded: they are few and must not be lost. A
   * behaviour gets them through its `info` handler; one without `info` cannot take them, which
   * is reported as a dead letter.
   */
  enqueueSystem(msg: SystemMessage): void {
    if (this.#flags & F_BEHAVIOUR && this.#behaviour && !this.#behaviour.info) {
      this.host.dropSystem(this, msg);
      return;
    }
    this.enqueue(msg, false);
  }

  #take(item: unknown): void {
    const kind = kindOf(item);
    if (kind === K_FLOW) return this.host.flowTaken(item as FlowItem);
    if (kind === K_CALL) {
      const x = this.#extras(); // see ActorExtras.openCalls
      const keep = (this.#flags & F_BEHAVIOUR) !== 0 ? (item as CallEnvelope) : x.current;
      if (keep !== undefined && !keep.done) (x.openCalls ??= new Set()).add(keep);
      x.current = item as CallEnvelope;
    }
  }

  /** Selective receive (process style). */
  receive(matcher: Matcher | undefined, options: ReceiveOptions | undefined): Promise<unknown> {
    if (!this.alive) return Promise.reject(new TroupeError('ACTOR_EXITED', 'actor has exited'));
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(aborted(signal, 'receive'));
    const x = this.#extras();
    if (x.waiter)
      return Promise.reject(
        new TroupeError('PROTOCOL_ERROR', 'receive called while another receive is pending'),
      );
    const mb = this.#mb;
    if (mb !== undefined) {
      for (let i = mb.start; i < mb.end; i++) {
        const item = mb.at(i);
        const m = match(matcher, messageOf(item));
        if (m === NO_MATCH) continue;
        mb.removeAt(i);
        this.#take(item);
        return Promise.resolve(m);
      }
    }
    return waitFor(x, this.host.clock, matcher, options);
  }

  /**
   * The caller of call `callId` from node `origin` cancelled it: drop it if it still waits in
   * the mailbox, else mark it answered (a later reply is dropped) and abort its `ctx.signal`.
   */
  cancelCall(origin: string, callId: number): void {
    if (this.#x?.cancel(origin, callId)) return;
    if (this.#mb !== undefined) dropQueuedCall(this.#mb, callOf, origin, callId);
  }

  /** The caller's node `node` was lost: abort the signals of its calls this actor holds open. */
  abortCallsFrom(node: string): void {
    this.#x?.abortFrom(node);
  }

  /** The AbortSignal of the call being handled (aborted if its caller cancels it). */
  get callSignal(): AbortSignal | undefined {
    return this.#x?.callSignal();
  }

  /** Drain the mailbox through the behaviour; returns how many messages were handled. */
  drain(budget: number): number {
    const mb = this.#mb;
    if (mb === undefined) return 0;
    let n = 0;
    while (n < budget && this.alive && (this.#flags & F_BUSY) === 0 && mb.size > 0) {
      const item = mb.shift();
      n++;
      this.#handle(item);
    }
    return n;
  }

  /** Whether the behaviour can make progress now. */
  get runnable(): boolean {
    return this.alive && (this.#flags & (F_READY | F_BUSY)) === F_READY && this.mailboxSize > 0;
  }

  #handle(item: unknown): void {
    const kind = kindOf(item);
    let call: CallEnvelope | undefined;
    let msg = item;
    if (kind === K_CALL) {
      call = item as CallEnvelope;
      msg = call.msg;
    } else if (kind === K_FLOW) {
      msg = (item as FlowItem).msg;
      this.host.flowTaken(item as FlowItem);
    }
    const b = this.#behaviour!;
    let r: unknown;
    if (kind === K_SYSTEM) {
      try {
        r = b.info!(msg as SystemMessage, this.#state, this.ctx);
      } catch (err) {
        this.#crash(err);
        return;
      }
    } else {
      const schema = this.schema;
      if (schema !== undefined) {
        const v = schema.safeParse(msg);
        if (!v.success) {
          this.host.invalid(this, v.error.issues, call);
          return;
        }
        msg = v.data;
      }
      if (call !== undefined) this.#extras().current = call;
      try {
        r = b.handle(msg, this.#state, this.ctx);
      } catch (err) {
        this.#crash(err);
        return;
      }
    }
    if (r !== undefined && typeof (r as PromiseLike<unknown>).then === 'function') {
      this.#flags |= F_BUSY;
      (r as PromiseLike<unknown>).then(
        (v) => {
          this.#flags &= ~F_BUSY;
          if (!this.alive) return;
          this.#after(v, call);
          if (this.mailboxSize > 0) this.host.schedule(this);
        },
        (err) => this.#crash(err),
      );
      return;
    }
    this.#after(r, call);
  }

  #after(r: unknown, call: CallEnvelope | undefined): void {
    if (kindOf(r) === K_REPLY) {
      this.#state = (r as Reply).state;
      if (call && !call.done) this.host.reply(call, true, (r as Reply).value);
    } else if (r !== undefined) {
      this.#state = r;
    }
    if (call === undefined) return;
    // A call the handler neither answered nor deferred gets `undefined`, so no caller hangs.
    const x = this.#x!;
    if (!call.done && !x.openCalls?.has(call)) this.host.reply(call, true, undefined);
    if (x.current === call) x.current = undefined;
  }

  #crash(err: unknown): void {
    this.#flags &= ~F_BUSY;
    if (this.alive) this.host.exit(this, errorReason(err, this.host.exposeStacks));
  }

  /** Answer the current call (if any, and not answered yet). */
  replyCurrent(value: unknown, options?: ReplyOptions): boolean {
    return this.#x?.replyCurrent(this.host, value, options?.transfer) ?? false;
  }

  /** Keep the current call open; returns a function that answers it later. */
  deferCurrent(): (value: unknown, options?: ReplyOptions) => boolean {
    const x = this.#x;
    if (x === undefined) return () => false;
    const answer = x.deferCurrent(this.host);
    return (value, options) => answer(value, options?.transfer);
  }

  /** The behaviour's current state (for terminate). */
  get state(): unknown {
    return this.#state;
  }

  get behaviour(): Behaviour<any, any, any> | undefined {
    return this.#behaviour;
  }

  /** Tear down the mailbox on exit; returns the calls that were waiting or open. */
  teardown(): CallEnvelope[] {
    this.alive = false;
    const calls: CallEnvelope[] = [];
    const mb = this.#mb;
    if (mb !== undefined) {
      for (const item of mb.clear()) {
        const k = kindOf(item);
        if (k === K_CALL && !(item as CallEnvelope).done) calls.push(item as CallEnvelope);
        // Never taken, but gone: its sender's credit comes back.
        else if (k === K_FLOW) this.host.flowTaken(item as FlowItem);
      }
    }
    this.#mb = undefined;
    this.#x?.teardown(calls, this.host.clock);
    return calls;
  }
}

/** The call `item` is, if it is one. */
const callOf = (item: unknown): CallEnvelope | undefined =>
  kindOf(item) === K_CALL ? (item as CallEnvelope) : undefined;

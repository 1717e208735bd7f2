import type { z } from 'zod';
import { aborted, onAbort } from './abort.ts';
import { ActorContext, type ContextHost } from './actor-context.ts';
import type { AnyActorRef } from './actor-ref.ts';
import type { Behaviour, ProcessFn } from './behaviour.ts';
import type { Clock } from './clock.ts';
import { TroupeError } from './errors.ts';
import { type ExitReason, errorReason } from './exit-reason.ts';
import { Mailbox } from './mailbox.ts';
import type { TransferOptions } from './transfer.ts';
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

export {
  type CustomReason,
  type ErrorReason,
  type ExitReason,
  isErrorReason,
} from './exit-reason.ts';
export {
  CallEnvelope,
  Down,
  downOf,
  Exit,
  isDown,
  isExit,
  NameLost,
  Reply,
  reply,
  type SystemMessage,
} from './messages.ts';
export { ActorContext } from './actor-context.ts';

/** What `receive` accepts to select a message: a zod schema or a predicate. */
export type Matcher = z.ZodType | ((m: unknown) => boolean);

/** Options of `receive`. */
export interface ReceiveOptions {
  /** Milliseconds to wait for a matching message before rejecting with `TIMEOUT`. @default Infinity */
  timeout?: number;
  /** Stop waiting when it aborts: `receive` rejects with `ABORTED`; the mailbox is left as it was. @default undefined */
  signal?: AbortSignal;
}

/** Options of `ctx.reply` and of a deferred reply. */
export interface ReplyOptions extends TransferOptions {}

/**
 * What an actor needs from the runtime it lives in (implemented by the node's runtime): ending,
 * scheduling, answering calls and reporting what it cannot take. @internal
 */
export interface ActorHost extends ContextHost {
  readonly clock: Clock;
  /** Whether error reasons carry stacks. */
  readonly exposeStacks: boolean;
  /** End `actor`: settle its calls, fire its links and monitors, drop its names. */
  exit(actor: Actor, reason: ExitReason, result?: unknown): void;
  /** Put a behaviour actor on the run queue. */
  schedule(actor: Actor): void;
  /** Answer a call (`transfer`: the reply's transfer list). */
  reply(call: CallEnvelope, ok: boolean, value: unknown, transfer?: readonly object[]): void;
  /** A behaviour's schema rejected a message it took from its mailbox. */
  invalid(actor: Actor, issues: unknown, call: CallEnvelope | undefined): void;
  /** A behaviour without `info` got a system message. */
  dropSystem(actor: Actor, msg: SystemMessage): void;
  /** An awaited send was taken by its actor (or dropped with its mailbox): credit its sender. */
  flowTaken(item: FlowItem): void;
}

interface Waiter {
  matcher: Matcher | undefined;
  resolve: (m: unknown) => void;
  reject: (e: unknown) => void;
  timer: unknown;
  /** Stops listening to the receive's AbortSignal. */
  off: (() => void) | undefined;
}

function isSchema(m: Matcher): m is z.ZodType {
  return typeof (m as z.ZodType).safeParse === 'function';
}

/**
 * Returns the matched message (the schema's output for zod) or `NO_MATCH`.
 */
const NO_MATCH = Symbol('no match');
function match(matcher: Matcher | undefined, msg: unknown): unknown {
  if (matcher === undefined) return msg;
  if (isSchema(matcher)) {
    const r = matcher.safeParse(msg);
    return r.success ? r.data : NO_MATCH;
  }
  return matcher(msg) ? msg : NO_MATCH;
}

/** State an actor rarely needs, allocated on first use so an idle actor stays small. */
class ActorExtras {
  waiter: Waiter | undefined = undefined;
  current: CallEnvelope | undefined = undefined;
  ctx: ActorContext | undefined = undefined;
  links: Map<string, AnyActorRef> | undefined = undefined;
  monitors: Map<string, AnyActorRef> | undefined = undefined;
  watchers: Map<string, AnyActorRef> | undefined = undefined;
  names: string[] | undefined = undefined;
  openCalls: Set<CallEnvelope> | undefined = undefined;
}

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
  readonly host: ActorHost;
  readonly ref: AnyActorRef;
  alive = true;
  /** Scheduled on the node's run queue. */
  scheduled = false;
  schema: z.ZodType | undefined = undefined;
  /** Mailbox bound; undefined = unbounded. */
  limit: number | undefined;

  #flags: number;
  #mb: Mailbox | undefined = undefined;
  #behaviour: Behaviour<any, any, any> | undefined = undefined;
  #state: unknown = undefined;
  #x: ActorExtras | undefined = undefined;

  constructor(
    host: ActorHost,
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

  #extras(): ActorExtras {
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
  get openCalls(): Set<CallEnvelope> | undefined {
    return this.#x?.openCalls;
  }
  set openCalls(v: Set<CallEnvelope> | undefined) {
    this.#extras().openCalls = v;
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
    if (kind === K_FLOW) {
      this.host.flowTaken(item as FlowItem);
      return;
    }
    if (kind === K_CALL) {
      const x = this.#extras();
      x.current = item as CallEnvelope;
      (x.openCalls ??= new Set()).add(item as CallEnvelope);
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
    const timeout = options?.timeout;
    return new Promise((resolve, reject) => {
      const w: Waiter = { matcher, resolve, reject, timer: undefined, off: undefined };
      if (timeout !== undefined && timeout !== Infinity) {
        w.timer = this.host.clock.setTimeout(() => {
          if (x.waiter !== w) return;
          x.waiter = undefined;
          w.off?.();
          reject(new TroupeError('TIMEOUT', `receive timed out after ${timeout} ms`));
        }, timeout);
      }
      if (signal !== undefined) {
        w.off = onAbort(signal, () => {
          if (x.waiter !== w) return;
          x.waiter = undefined;
          if (w.timer !== undefined) this.host.clock.clearTimeout(w.timer);
          reject(aborted(signal, 'receive'));
        });
      }
      x.waiter = w;
    });
  }

  /**
   * The caller of call `callId` from node `origin` cancelled it: drop it if it still waits in
   * the mailbox, else mark it answered (a later reply is dropped) and abort its `ctx.signal`.
   */
  cancelCall(origin: string, callId: number): void {
    const is = (c: unknown): c is CallEnvelope =>
      kindOf(c) === K_CALL &&
      (c as CallEnvelope).callId === callId &&
      (c as CallEnvelope).replyNode === origin;
    const x = this.#x;
    let call: CallEnvelope | undefined;
    if (x?.current !== undefined && is(x.current)) call = x.current;
    if (call === undefined && x?.openCalls) for (const c of x.openCalls) if (is(c)) call = c;
    if (call === undefined) {
      const mb = this.#mb;
      if (mb === undefined) return;
      for (let i = mb.start; i < mb.end; i++) {
        const item = mb.at(i);
        if (!is(item)) continue;
        item.done = true;
        mb.removeAt(i);
        return;
      }
      return;
    }
    if (call.done) return;
    call.done = true;
    x!.openCalls?.delete(call);
    call.ac?.abort(new TroupeError('ABORTED', 'the caller cancelled the call'));
  }

  /** The caller's node `node` was lost: abort the signals of its calls this actor holds open. */
  abortCallsFrom(node: string): void {
    const x = this.#x;
    if (x === undefined) return;
    const lost = (c: CallEnvelope | undefined): void => {
      if (c !== undefined && c.replyNode === node && c.ac !== undefined && !c.done)
        c.ac.abort(new TroupeError('NODE_DOWN', `the caller's node ${node} was lost`));
    };
    lost(x.current);
    if (x.openCalls) for (const c of x.openCalls) lost(c);
  }

  /** The AbortSignal of the call being handled (aborted if its caller cancels it). */
  get callSignal(): AbortSignal | undefined {
    const call = this.#x?.current;
    if (call === undefined) return undefined;
    return (call.ac ??= new AbortController()).signal;
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
    const call = this.#x?.current;
    if (!call || call.done) return false;
    this.#x!.openCalls?.delete(call);
    this.host.reply(call, true, value, options?.transfer);
    return true;
  }

  /** Keep the current call open; returns a function that answers it later. */
  deferCurrent(): (value: unknown, options?: ReplyOptions) => boolean {
    const call = this.#x?.current;
    if (!call) return () => false;
    const x = this.#x!;
    (x.openCalls ??= new Set()).add(call);
    return (value, options) => {
      if (call.done) return false;
      x.openCalls?.delete(call);
      this.host.reply(call, true, value, options?.transfer);
      return true;
    };
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
    const x = this.#x;
    if (x === undefined) return calls;
    if (x.openCalls) for (const c of x.openCalls) if (!c.done) calls.push(c);
    // The call being handled when the handler threw is in neither the mailbox nor openCalls:
    // without this its caller would wait for its timeout instead of getting ACTOR_EXITED.
    const cur = x.current;
    if (cur !== undefined && !cur.done && !x.openCalls?.has(cur)) calls.push(cur);
    const w = x.waiter;
    if (w) {
      x.waiter = undefined;
      if (w.timer !== undefined) this.host.clock.clearTimeout(w.timer);
      w.off?.();
      // Unwind the process function (its `finally` blocks run); its result is ignored.
      w.reject(new TroupeError('ACTOR_EXITED', 'actor exited while waiting in receive'));
    }
    return calls;
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return (
    typeof x === 'object' && x !== null && typeof (x as PromiseLike<unknown>).then === 'function'
  );
}

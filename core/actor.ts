import type { z } from 'zod';
import { ActorRef, type CallOptions } from './actor-ref.ts';
import { aborted, onAbort } from './abort.ts';
import { TroupeError } from './errors.ts';
import type { TransferOptions } from './transfer.ts';
import type { Node } from './node.ts';
import type { SpawnOptions, ChildSpawnOptions, Behaviour, ProcessFn } from './behaviour.ts';

/**
 * Why an actor ended: `normal`, `killed`, `shutdown`, `noproc` (it did not exist),
 * `noconnection` (its node was lost), an {@link ErrorReason} when it threw, or any value passed
 * to `exit(ref, reason)`.
 */
export type ExitReason = 'normal' | 'killed' | 'shutdown' | 'noproc' | 'noconnection' | ErrorReason | (string & {}) | unknown;

/** The exit reason of an actor that threw. */
export interface ErrorReason {
  type: 'error';
  name: string;
  message: string;
  /** The `code` of a {@link TroupeError}, when it was one. */
  code?: string;
  /** The stack, only when the node has `exposeStacks` on. */
  stack?: string;
}

/** Whether `r` is the reason of an actor that threw. */
export function isErrorReason(r: unknown): r is ErrorReason {
  return typeof r === 'object' && r !== null && (r as ErrorReason).type === 'error' && typeof (r as ErrorReason).message === 'string';
}

/** Turn a thrown value into an exit reason. */
export function errorReason(err: unknown, withStack: boolean): ErrorReason {
  if (err instanceof Error) {
    const r: ErrorReason = { type: 'error', name: err.name, message: err.message };
    if (err instanceof TroupeError) r.code = err.code;
    if (withStack && err.stack) r.stack = err.stack;
    return r;
  }
  return { type: 'error', name: 'Error', message: typeof err === 'string' ? err : JSON.stringify(err) ?? String(err) };
}

/** Whether a reason is abnormal, i.e. propagates along links. */
export function isAbnormal(reason: unknown): boolean {
  return reason !== 'normal';
}

/**
 * Marks the runtime's own mailbox items so the hot path tells them from user messages with one
 * property read instead of a chain of `instanceof` checks (user messages never carry it).
 */
const KIND: unique symbol = Symbol('troupe.kind');
const K_CALL = 1;
const K_SYSTEM = 2;
const K_REPLY = 3;

function kindOf(x: unknown): number | undefined {
  return x !== null && typeof x === 'object' ? (x as { [KIND]?: number })[KIND] : undefined;
}

/** System message: a monitored actor ended. Match it with {@link isDown} or {@link downOf}. */
export class Down {
  readonly type = 'DOWN' as const;
  declare readonly [KIND]: number;
  constructor(
    /** The monitor id `monitor()` returned. */
    readonly monitor: string,
    /** The actor that ended. */
    readonly ref: ActorRef<any, any>,
    readonly reason: ExitReason,
    /** What the actor's process function returned, when it ended normally with a value. */
    readonly result?: unknown,
  ) {}
}

/** System message: a linked actor ended (or someone called `exit(self, reason)`), while trapping exits. */
export class Exit {
  readonly type = 'EXIT' as const;
  declare readonly [KIND]: number;
  constructor(
    readonly from: ActorRef<any, any> | undefined,
    readonly reason: ExitReason,
    readonly result?: unknown,
  ) {}
}

/** System message: this actor lost a registered name to another actor in a registry conflict. */
export class NameLost {
  readonly type = 'NAME_LOST' as const;
  declare readonly [KIND]: number;
  constructor(
    readonly name: string,
    readonly winner: ActorRef<any, any>,
  ) {}
}

for (const c of [Down, Exit, NameLost]) Object.defineProperty(c.prototype, KIND, { value: K_SYSTEM });

/** The messages the runtime itself puts in a mailbox. */
export type SystemMessage = Down | Exit | NameLost;

/** Matches any DOWN message. */
export const isDown = (m: unknown): m is Down => m instanceof Down;
/** Matches any EXIT message. */
export const isExit = (m: unknown): m is Exit => m instanceof Exit;
/** Matches the DOWN message of one actor (or one monitor id). */
export const downOf =
  (target: ActorRef<any, any> | string) =>
  (m: unknown): m is Down =>
    m instanceof Down && (typeof target === 'string' ? m.monitor === target : m.ref.equals(target));

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

/** A behaviour's answer to a call that also sets the next state. See {@link reply}. */
export class Reply<S = unknown> {
  declare readonly [KIND]: number;
  constructor(
    readonly value: unknown,
    readonly state: S,
  ) {}
}
Object.defineProperty(Reply.prototype, KIND, { value: K_REPLY });

/** Return from a behaviour's `handle` to answer the current call with `value` and keep `state`. */
export function reply<S>(value: unknown, state: S): Reply<S> {
  return new Reply(value, state);
}

/** A call waiting in a mailbox (or taken and not yet answered). @internal */
export class CallEnvelope {
  done = false;
  /** Made when the handler asks for `ctx.signal`; aborted when the caller cancels. */
  ac: AbortController | undefined = undefined;
  declare readonly [KIND]: number;
  constructor(
    public msg: unknown,
    readonly callId: number,
    readonly replyNode: string,
  ) {}
}
Object.defineProperty(CallEnvelope.prototype, KIND, { value: K_CALL });

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
  ctx: ActorContext<any> | undefined = undefined;
  links: Map<string, ActorRef<any, any>> | undefined = undefined;
  monitors: Map<string, ActorRef<any, any>> | undefined = undefined;
  watchers: Map<string, ActorRef<any, any>> | undefined = undefined;
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
  readonly node: Node;
  readonly ref: ActorRef<any, any>;
  alive = true;
  /** Scheduled on the node's run queue. */
  scheduled = false;
  schema: z.ZodType | undefined = undefined;
  /** Mailbox bound; undefined = unbounded. */
  limit: number | undefined;

  #flags: number;
  #mb: unknown[] | undefined = undefined;
  #head = 0;
  #behaviour: Behaviour<any, any, any> | undefined = undefined;
  #state: unknown = undefined;
  #x: ActorExtras | undefined = undefined;

  constructor(node: Node, id: number, ref: ActorRef<any, any>, kind: 'process' | 'behaviour', maxMailbox: number) {
    this.node = node;
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
  get links(): Map<string, ActorRef<any, any>> | undefined {
    return this.#x?.links;
  }
  set links(v: Map<string, ActorRef<any, any>> | undefined) {
    this.#extras().links = v;
  }
  /** Monitors this actor holds: monitor id → target. */
  get monitors(): Map<string, ActorRef<any, any>> | undefined {
    return this.#x?.monitors;
  }
  set monitors(v: Map<string, ActorRef<any, any>> | undefined) {
    this.#extras().monitors = v;
  }
  /** Monitors on this actor: monitor id → watcher. */
  get watchers(): Map<string, ActorRef<any, any>> | undefined {
    return this.#x?.watchers;
  }
  set watchers(v: Map<string, ActorRef<any, any>> | undefined) {
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
  get ctx(): ActorContext<any> {
    const x = this.#extras();
    return (x.ctx ??= new ActorContext(this));
  }

  get mailboxSize(): number {
    return this.#mb === undefined ? 0 : this.#mb.length - this.#head;
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
      (result) => this.node._exit(this, 'normal', result),
      (err) => {
        if (this.alive) this.node._exit(this, errorReason(err, this.node.options.exposeStacks));
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
      this.node._exit(this, errorReason(err, this.node.options.exposeStacks));
      return;
    }
    if (isThenable(init)) {
      this.#flags |= F_BUSY;
      init.then(
        (s) => {
          this.#flags = (this.#flags & ~F_BUSY) | F_READY;
          this.#state = s;
          if (this.alive && this.mailboxSize > 0) this.node._schedule(this);
        },
        (err) => this.#crash(err),
      );
    } else {
      this.#state = init;
      this.#flags |= F_READY;
      if (this.mailboxSize > 0) this.node._schedule(this);
    }
  }

  /** Put a message or call in the mailbox. Returns false when the mailbox is full. */
  enqueue(item: unknown, bounded = true): boolean {
    const flags = this.#flags;
    if ((flags & F_BEHAVIOUR) === 0) {
      const w = this.#x?.waiter;
      if (w !== undefined) {
        const msg = kindOf(item) === K_CALL ? (item as CallEnvelope).msg : item;
        const m = match(w.matcher, msg);
        if (m !== NO_MATCH) {
          this.#x!.waiter = undefined;
          if (w.timer !== undefined) this.node.clock.clearTimeout(w.timer);
          w.off?.();
          this.#take(item);
          w.resolve(m);
          return true;
        }
      }
    }
    let mb = this.#mb;
    if (mb === undefined) mb = this.#mb = [];
    else if (bounded && this.limit !== undefined && mb.length - this.#head >= this.limit) return false;
    mb.push(item);
    if ((flags & (F_BEHAVIOUR | F_READY | F_BUSY)) === (F_BEHAVIOUR | F_READY) && !this.scheduled) this.node._schedule(this);
    return true;
  }

  /**
   * Put a system message in the mailbox. Never bounded: they are few and must not be lost. A
   * behaviour gets them through its `info` handler; one without `info` cannot take them, which
   * is reported as a dead letter.
   */
  enqueueSystem(msg: SystemMessage): void {
    if (this.#flags & F_BEHAVIOUR && this.#behaviour && !this.#behaviour.info) {
      this.node._dropSystem(this, msg);
      return;
    }
    this.enqueue(msg, false);
  }

  #take(item: unknown): void {
    if (kindOf(item) === K_CALL) {
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
    if (x.waiter) return Promise.reject(new TroupeError('PROTOCOL_ERROR', 'receive called while another receive is pending'));
    const mb = this.#mb;
    if (mb !== undefined) {
      for (let i = this.#head; i < mb.length; i++) {
        const item = mb[i];
        const m = match(matcher, kindOf(item) === K_CALL ? (item as CallEnvelope).msg : item);
        if (m === NO_MATCH) continue;
        if (i === this.#head) {
          mb[i] = undefined;
          this.#head++;
          if (this.#head === mb.length) {
            mb.length = 0;
            this.#head = 0;
          }
        } else {
          mb.splice(i, 1);
        }
        this.#take(item);
        return Promise.resolve(m);
      }
    }
    const timeout = options?.timeout;
    return new Promise((resolve, reject) => {
      const w: Waiter = { matcher, resolve, reject, timer: undefined, off: undefined };
      if (timeout !== undefined && timeout !== Infinity) {
        w.timer = this.node.clock.setTimeout(() => {
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
          if (w.timer !== undefined) this.node.clock.clearTimeout(w.timer);
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
    const is = (c: unknown): c is CallEnvelope => kindOf(c) === K_CALL && (c as CallEnvelope).callId === callId && (c as CallEnvelope).replyNode === origin;
    const x = this.#x;
    let call: CallEnvelope | undefined;
    if (x?.current !== undefined && is(x.current)) call = x.current;
    if (call === undefined && x?.openCalls) for (const c of x.openCalls) if (is(c)) call = c;
    if (call === undefined) {
      const mb = this.#mb;
      if (mb === undefined) return;
      for (let i = this.#head; i < mb.length; i++) {
        if (!is(mb[i])) continue;
        (mb[i] as CallEnvelope).done = true;
        mb.splice(i, 1);
        return;
      }
      return;
    }
    if (call.done) return;
    call.done = true;
    x!.openCalls?.delete(call);
    call.ac?.abort(new TroupeError('ABORTED', 'the caller cancelled the call'));
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
    while (n < budget && this.alive && (this.#flags & F_BUSY) === 0 && this.#head < mb.length) {
      const item = mb[this.#head];
      mb[this.#head++] = undefined;
      if (this.#head === mb.length) {
        mb.length = 0;
        this.#head = 0;
      } else if (this.#head >= 4096 && this.#head * 2 >= mb.length) {
        mb.splice(0, this.#head);
        this.#head = 0;
      }
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
          this.node._invalid(this, v.error.issues, call);
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
          if (this.mailboxSize > 0) this.node._schedule(this);
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
      if (call && !call.done) this.node._reply(call, true, (r as Reply).value);
    } else if (r !== undefined) {
      this.#state = r;
    }
    if (call === undefined) return;
    // A call the handler neither answered nor deferred gets `undefined`, so no caller hangs.
    const x = this.#x!;
    if (!call.done && !x.openCalls?.has(call)) this.node._reply(call, true, undefined);
    if (x.current === call) x.current = undefined;
  }

  #crash(err: unknown): void {
    this.#flags &= ~F_BUSY;
    if (this.alive) this.node._exit(this, errorReason(err, this.node.options.exposeStacks));
  }

  /** Answer the current call (if any, and not answered yet). */
  replyCurrent(value: unknown, options?: ReplyOptions): boolean {
    const call = this.#x?.current;
    if (!call || call.done) return false;
    this.#x!.openCalls?.delete(call);
    this.node._reply(call, true, value, options?.transfer);
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
      this.node._reply(call, true, value, options?.transfer);
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
      for (let i = this.#head; i < mb.length; i++) {
        const item = mb[i];
        if (kindOf(item) === K_CALL && !(item as CallEnvelope).done) calls.push(item as CallEnvelope);
      }
    }
    this.#mb = undefined;
    this.#head = 0;
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
      if (w.timer !== undefined) this.node.clock.clearTimeout(w.timer);
      w.off?.();
      // Unwind the process function (its `finally` blocks run); its result is ignored.
      w.reject(new TroupeError('ACTOR_EXITED', 'actor exited while waiting in receive'));
    }
    return calls;
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as PromiseLike<unknown>).then === 'function';
}

/**
 * What an actor's code sees of itself: its ref, `receive`, `reply`, links, monitors, spawning
 * children and calling others. Handed to process functions as `self` and to behaviours as `ctx`.
 */
export class ActorContext<M = unknown> {
  #actor: Actor;

  /** @internal */
  constructor(actor: Actor) {
    this.#actor = actor;
  }

  /** This actor's ref. */
  get ref(): ActorRef<M> {
    return this.#actor.ref;
  }

  /** The node this actor runs on. */
  get node(): Node {
    return this.#actor.node;
  }

  /** Messages waiting in the mailbox. */
  get mailboxSize(): number {
    return this.#actor.mailboxSize;
  }

  /**
   * Selective receive: resolve with the first message in the mailbox that matches (a zod schema
   * — resolving with its output — or a predicate), waiting for one if none does. Messages that do
   * not match stay in the mailbox, in order.
   * @throws {TroupeError} `TIMEOUT` after `options.timeout` ms without a match.
   */
  receive(): Promise<M | SystemMessage>;
  receive<S extends z.ZodType>(schema: S, options?: ReceiveOptions): Promise<z.output<S>>;
  receive<T>(predicate: (m: unknown) => m is T, options?: ReceiveOptions): Promise<T>;
  receive(predicate: (m: unknown) => boolean, options?: ReceiveOptions): Promise<unknown>;
  receive(matcher?: Matcher, options?: ReceiveOptions): Promise<unknown> {
    return this.#actor.receive(matcher, options);
  }

  /**
   * Answer the call whose message was received (or is being handled) last. Returns false if
   * there is none (or it was answered or cancelled). An async iterable answers a `stream`.
   */
  reply(value: unknown, options?: ReplyOptions): boolean {
    return this.#actor.replyCurrent(value, options);
  }

  /** Keep the current call open past this handler; returns a function that answers it later. */
  deferReply(): (value: unknown, options?: ReplyOptions) => boolean {
    return this.#actor.deferCurrent();
  }

  /**
   * The AbortSignal of the call received (or being handled) last: it aborts when the caller
   * cancels the call (`call(msg, { signal })`). Read it while handling the call and keep it for
   * deferred work. Undefined when no call is being handled.
   */
  get signal(): AbortSignal | undefined {
    return this.#actor.callSignal;
  }

  /** Turn exit signals from links into {@link Exit} messages (`true`) or not. */
  trapExit(on = true): void {
    this.#actor.trapExit = on;
  }

  /** Link with `ref` (two-way: an abnormal exit of either ends the other unless it traps exits). */
  link(ref: ActorRef<any, any>): void {
    this.#actor.node._actorLinks.link(this.#actor, ref);
  }

  unlink(ref: ActorRef<any, any>): void {
    this.#actor.node._actorLinks.unlink(this.#actor, ref);
  }

  /** Monitor `ref`: one {@link Down} message arrives when it ends (`noproc` at once if it is not alive). Returns the monitor id. */
  monitor(ref: ActorRef<any, any>): string {
    return this.#actor.node._actorLinks.monitor(this.#actor, ref);
  }

  demonitor(monitorId: string): void {
    this.#actor.node._actorLinks.demonitor(this.#actor, monitorId);
  }

  /** Spawn a child on this node; `link`/`monitor` apply to this actor atomically with the spawn. */
  spawn<S extends z.ZodType>(fn: ProcessFn<z.output<S>>, options: ChildSpawnOptions & { schema: S }): ActorRef<z.input<S>>;
  spawn<N, I = N>(fn: ProcessFn<N> | Behaviour<N, any, any, I>, options?: ChildSpawnOptions): ActorRef<I>;
  spawn(fn: ProcessFn<any> | Behaviour<any, any, any>, options: ChildSpawnOptions = {}): ActorRef<any> {
    const { link, monitor, ...rest } = options;
    const opts: SpawnOptions = rest;
    if (link) opts.link = this.#actor.ref;
    if (monitor) opts.monitor = this.#actor.ref;
    return this.#actor.node.spawn(fn as ProcessFn<any>, opts);
  }

  /**
   * Spawn a named behaviour on another node (see `node.define`), linked to and/or monitored by
   * this actor atomically with the spawn.
   */
  spawnOn<N = unknown>(nodeId: string, behaviour: string, args?: unknown, options: { link?: boolean; monitor?: boolean; timeout?: number } = {}): Promise<ActorRef<N>> {
    return this.#actor.node._spawnRemote(nodeId, behaviour, args, this.#actor, options) as Promise<ActorRef<N>>;
  }

  /**
   * Call `ref` from this actor.
   * @throws {TroupeError} `CALLING_SELF` when `ref` is this actor; otherwise as `ActorRef.call`.
   */
  call<R = unknown>(ref: ActorRef<any, any>, msg: unknown, options?: CallOptions): Promise<R> {
    if (ref.node === this.#actor.node.id && ref.id === this.#actor.id) {
      return Promise.reject(new TroupeError('CALLING_SELF', `actor ${ref.key} called itself`));
    }
    return this.#actor.node._call(ref, msg, options, this.#actor) as Promise<R>;
  }

  /** Register this actor under `name` (cluster-wide). */
  register(name: string): boolean {
    return this.#actor.node.register(name, this.#actor.ref);
  }

  /**
   * `exit(reason)`: end this actor now (default reason `normal`).
   * `exit(ref, reason)`: send `ref` an exit signal from this actor (Erlang's `exit/2`; `'kill'`
   * cannot be trapped).
   */
  exit(reason?: ExitReason): void;
  exit(ref: ActorRef<any, any>, reason: ExitReason): void;
  exit(a: unknown = 'normal', reason?: ExitReason): void {
    if (a instanceof ActorRef && arguments.length >= 2) {
      this.#actor.node.exitTo(a, reason, this.#actor);
      return;
    }
    this.#actor.node._exit(this.#actor, a);
  }
}

import type { z } from 'zod';
import { ActorRef, type CallOptions } from './actor-ref.ts';
import { TroupeError } from './errors.ts';
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

/** System message: a monitored actor ended. Match it with {@link isDown} or {@link downOf}. */
export class Down {
  readonly type = 'DOWN' as const;
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
  constructor(
    readonly from: ActorRef<any, any> | undefined,
    readonly reason: ExitReason,
    readonly result?: unknown,
  ) {}
}

/** System message: this actor lost a registered name to another actor in a registry conflict. */
export class NameLost {
  readonly type = 'NAME_LOST' as const;
  constructor(
    readonly name: string,
    readonly winner: ActorRef<any, any>,
  ) {}
}

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
}

/** A behaviour's answer to a call that also sets the next state. See {@link reply}. */
export class Reply<S = unknown> {
  constructor(
    readonly value: unknown,
    readonly state: S,
  ) {}
}

/** Return from a behaviour's `handle` to answer the current call with `value` and keep `state`. */
export function reply<S>(value: unknown, state: S): Reply<S> {
  return new Reply(value, state);
}

/** A call waiting in a mailbox (or taken and not yet answered). @internal */
export class CallEnvelope {
  done = false;
  constructor(
    readonly msg: unknown,
    readonly callId: number,
    readonly replyNode: string,
  ) {}
}

interface Waiter {
  matcher: Matcher | undefined;
  resolve: (m: unknown) => void;
  reject: (e: unknown) => void;
  timer: unknown;
}

const PROCESS = 0;
const BEHAVIOUR = 1;

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
    if (msg instanceof Down || msg instanceof Exit || msg instanceof NameLost) {
      // system messages match a schema only if the schema says so explicitly (z.instanceof)
    }
    const r = matcher.safeParse(msg);
    return r.success ? r.data : NO_MATCH;
  }
  return matcher(msg) ? msg : NO_MATCH;
}

/**
 * One actor: a mailbox plus either an async process function (selective receive) or a
 * behaviour (`init`/`handle`). Per-actor link/monitor state is allocated lazily: an idle actor
 * is a handful of fields.
 * @internal
 */
export class Actor {
  readonly id: number;
  readonly node: Node;
  readonly ref: ActorRef<any, any>;
  alive = true;
  trapExit = false;
  /** Scheduled on the node's run queue. */
  scheduled = false;
  schema: z.ZodType | undefined;
  maxMailbox: number;

  #kind: number;
  #mb: unknown[] = [];
  #head = 0;
  #behaviour: Behaviour<any, any, any> | undefined;
  #state: unknown;
  #ready = false;
  #busy = false;
  #waiter: Waiter | undefined;
  #current: CallEnvelope | undefined;
  #ctx: ActorContext<any> | undefined;

  links: Map<string, ActorRef<any, any>> | undefined;
  /** Monitors this actor holds: monitor id → target. */
  monitors: Map<string, ActorRef<any, any>> | undefined;
  /** Monitors on this actor: monitor id → watcher. */
  watchers: Map<string, ActorRef<any, any>> | undefined;
  names: string[] | undefined;
  openCalls: Set<CallEnvelope> | undefined;

  constructor(node: Node, id: number, ref: ActorRef<any, any>, kind: 'process' | 'behaviour', maxMailbox: number) {
    this.node = node;
    this.id = id;
    this.ref = ref;
    this.#kind = kind === 'process' ? PROCESS : BEHAVIOUR;
    this.maxMailbox = maxMailbox;
  }

  /** The context object handed to user code (created on first use). */
  get ctx(): ActorContext<any> {
    return (this.#ctx ??= new ActorContext(this));
  }

  get mailboxSize(): number {
    return this.#mb.length - this.#head;
  }

  /** Start a process function. */
  startProcess(fn: ProcessFn<any>): void {
    this.#ready = true;
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
      this.#busy = true;
      init.then(
        (s) => {
          this.#busy = false;
          this.#state = s;
          this.#ready = true;
          if (this.alive && this.mailboxSize > 0) this.node._schedule(this);
        },
        (err) => this.#crash(err),
      );
    } else {
      this.#state = init;
      this.#ready = true;
      if (this.mailboxSize > 0) this.node._schedule(this);
    }
  }

  /** Put a (validated) message or call in the mailbox. Returns false when the mailbox is full. */
  enqueue(item: unknown, bounded = true): boolean {
    if (this.#kind === PROCESS) {
      const w = this.#waiter;
      if (w !== undefined) {
        const msg = item instanceof CallEnvelope ? item.msg : item;
        const m = match(w.matcher, msg);
        if (m !== NO_MATCH) {
          this.#waiter = undefined;
          if (w.timer !== undefined) this.node.clock.clearTimeout(w.timer);
          this.#take(item);
          w.resolve(m);
          return true;
        }
      }
    }
    if (bounded && this.#mb.length - this.#head >= this.maxMailbox) return false;
    this.#mb.push(item);
    if (this.#kind === BEHAVIOUR && !this.scheduled && this.#ready && !this.#busy) this.node._schedule(this);
    return true;
  }

  /**
   * Put a system message in the mailbox. Never bounded: they are few and must not be lost. A
   * behaviour gets them through its `info` handler; one without `info` cannot take them, which
   * is reported as a dead letter.
   */
  enqueueSystem(msg: SystemMessage): void {
    if (this.#kind === BEHAVIOUR && this.#behaviour && !this.#behaviour.info) {
      this.node._dropSystem(this, msg);
      return;
    }
    this.enqueue(msg, false);
  }

  #take(item: unknown): void {
    if (item instanceof CallEnvelope) {
      this.#current = item;
      (this.openCalls ??= new Set()).add(item);
    }
  }

  /** Selective receive (process style). */
  receive(matcher: Matcher | undefined, options: ReceiveOptions | undefined): Promise<unknown> {
    if (!this.alive) return Promise.reject(new TroupeError('ACTOR_EXITED', 'actor has exited'));
    if (this.#waiter) return Promise.reject(new TroupeError('PROTOCOL_ERROR', 'receive called while another receive is pending'));
    const mb = this.#mb;
    for (let i = this.#head; i < mb.length; i++) {
      const item = mb[i];
      const m = match(matcher, item instanceof CallEnvelope ? item.msg : item);
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
    const timeout = options?.timeout;
    return new Promise((resolve, reject) => {
      const w: Waiter = { matcher, resolve, reject, timer: undefined };
      if (timeout !== undefined && timeout !== Infinity) {
        w.timer = this.node.clock.setTimeout(() => {
          if (this.#waiter !== w) return;
          this.#waiter = undefined;
          reject(new TroupeError('TIMEOUT', `receive timed out after ${timeout} ms`));
        }, timeout);
      }
      this.#waiter = w;
    });
  }

  /** Drain the mailbox through the behaviour; returns how many messages were handled. */
  drain(budget: number): number {
    let n = 0;
    const mb = this.#mb;
    while (n < budget && this.alive && !this.#busy && this.#head < mb.length) {
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
    return this.alive && this.#ready && !this.#busy && this.#head < this.#mb.length;
  }

  #handle(item: unknown): void {
    let call: CallEnvelope | undefined;
    let msg = item;
    if (item instanceof CallEnvelope) {
      call = item;
      msg = item.msg;
    }
    this.#current = call;
    let r: unknown;
    try {
      const b = this.#behaviour!;
      r = msg instanceof Down || msg instanceof Exit || msg instanceof NameLost ? b.info!(msg, this.#state, this.ctx) : b.handle(msg, this.#state, this.ctx);
    } catch (err) {
      this.#crash(err);
      return;
    }
    if (isThenable(r)) {
      this.#busy = true;
      r.then(
        (v) => {
          this.#busy = false;
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
    if (r instanceof Reply) {
      this.#state = r.state;
      if (call && !call.done) this.node._reply(call, true, r.value);
    } else if (r !== undefined) {
      this.#state = r;
    }
    // A call the handler neither answered nor deferred gets `undefined`, so no caller hangs.
    if (call && !call.done && !this.openCalls?.has(call)) this.node._reply(call, true, undefined);
    if (this.#current === call) this.#current = undefined;
  }

  #crash(err: unknown): void {
    this.#busy = false;
    if (this.alive) this.node._exit(this, errorReason(err, this.node.options.exposeStacks));
  }

  /** Answer the current call (if any, and not answered yet). */
  replyCurrent(value: unknown): boolean {
    const call = this.#current;
    if (!call || call.done) return false;
    this.node._reply(call, true, value);
    return true;
  }

  /** Keep the current call open; returns a function that answers it later. */
  deferCurrent(): (value: unknown) => boolean {
    const call = this.#current;
    if (!call) return () => false;
    (this.openCalls ??= new Set()).add(call);
    return (value) => {
      if (call.done) return false;
      this.node._reply(call, true, value);
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
    for (let i = this.#head; i < this.#mb.length; i++) {
      const item = this.#mb[i];
      if (item instanceof CallEnvelope && !item.done) calls.push(item);
    }
    if (this.openCalls) for (const c of this.openCalls) if (!c.done) calls.push(c);
    this.#mb = [];
    this.#head = 0;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      if (w.timer !== undefined) this.node.clock.clearTimeout(w.timer);
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

  /** Answer the call whose message was received (or is being handled) last. Returns false if there is none. */
  reply(value: unknown): boolean {
    return this.#actor.replyCurrent(value);
  }

  /** Keep the current call open past this handler; returns a function that answers it later. */
  deferReply(): (value: unknown) => boolean {
    return this.#actor.deferCurrent();
  }

  /** Turn exit signals from links into {@link Exit} messages (`true`) or not. */
  trapExit(on = true): void {
    this.#actor.trapExit = on;
  }

  /** Link with `ref` (two-way: an abnormal exit of either ends the other unless it traps exits). */
  link(ref: ActorRef<any, any>): void {
    this.#actor.node._link(this.#actor, ref);
  }

  unlink(ref: ActorRef<any, any>): void {
    this.#actor.node._unlink(this.#actor, ref);
  }

  /** Monitor `ref`: one {@link Down} message arrives when it ends (`noproc` at once if it is not alive). Returns the monitor id. */
  monitor(ref: ActorRef<any, any>): string {
    return this.#actor.node._monitor(this.#actor, ref);
  }

  demonitor(monitorId: string): void {
    this.#actor.node._demonitor(this.#actor, monitorId);
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

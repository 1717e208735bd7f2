import type { AnyActorRef } from './actor-ref.ts';
import type { ExitReason } from './exit-reason.ts';

/**
 * Marks the runtime's own mailbox items so the hot path tells them from user messages with one
 * property read instead of a chain of `instanceof` checks (user messages never carry it).
 */
const KIND: unique symbol = Symbol('troupe.kind');
/** A call waiting in a mailbox. @internal */
export const K_CALL = 1;
/** A system message (DOWN, EXIT, NAME_LOST). @internal */
export const K_SYSTEM = 2;
/** A behaviour's {@link Reply}. @internal */
export const K_REPLY = 3;
/** An awaited send ({@link FlowItem}). @internal */
export const K_FLOW = 4;

/** The kind mark of a mailbox item or handler result; undefined for user values. @internal */
export function kindOf(x: unknown): number | undefined {
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
    readonly ref: AnyActorRef,
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
    readonly from: AnyActorRef | undefined,
    /** The signal's reason as its sender gave it (an {@link ExitReason} when a linked actor ended). */
    readonly reason: unknown,
    readonly result?: unknown,
  ) {}
}

/** System message: this actor lost a registered name to another actor in a registry conflict. */
export class NameLost {
  readonly type = 'NAME_LOST' as const;
  declare readonly [KIND]: number;
  constructor(
    readonly name: string,
    readonly winner: AnyActorRef,
  ) {}
}

for (const c of [Down, Exit, NameLost]) {
  Object.defineProperty(c.prototype, KIND, { value: K_SYSTEM });
}

/** The messages the runtime itself puts in a mailbox. */
export type SystemMessage = Down | Exit | NameLost;

/** Matches any DOWN message. */
export const isDown = (m: unknown): m is Down => m instanceof Down;
/** Matches any EXIT message. */
export const isExit = (m: unknown): m is Exit => m instanceof Exit;
/** Matches the DOWN message of one actor (or one monitor id). */
export const downOf =
  (target: AnyActorRef | string) =>
  (m: unknown): m is Down =>
    m instanceof Down && (typeof target === 'string' ? m.monitor === target : m.ref.equals(target));

/**
 * A behaviour's answer to a call that also sets the next state. See {@link reply}. `V` is the
 * reply's type: a behaviour's refs resolve their calls with the union of the `V`s its `handle`
 * returns.
 */
export class Reply<S = unknown, V = unknown> {
  declare readonly [KIND]: number;
  constructor(
    readonly value: V,
    readonly state: S,
  ) {}
}
Object.defineProperty(Reply.prototype, KIND, { value: K_REPLY });

/**
 * Return from a behaviour's `handle` to answer the current call with `value` and keep `state`.
 * @example
 * handle: (m, total) => (m.op === 'get' ? reply(total, total) : total + m.n)
 */
export function reply<S, V>(value: V, state: S): Reply<S, V> {
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

/**
 * An awaited send waiting in a mailbox: its credit goes back to `origin` when it is taken (see
 * core/flow-credit.ts). @internal
 */
export class FlowItem {
  declare readonly [KIND]: number;
  constructor(
    readonly msg: unknown,
    readonly origin: string,
    readonly bytes: number,
  ) {}
}
Object.defineProperty(FlowItem.prototype, KIND, { value: K_FLOW });

/** The message a mailbox item carries (a call's or an awaited send's message, else the item). @internal */
export function messageOf(item: unknown): unknown {
  const k = kindOf(item);
  return k === K_CALL ? (item as CallEnvelope).msg : k === K_FLOW ? (item as FlowItem).msg : item;
}

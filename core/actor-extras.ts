import type { Clock } from './clock.ts';
import { TroupeError } from './errors.ts';
import type { Waiter } from './receive.ts';

/** What the open-call bookkeeping needs of a call (a CallEnvelope). */
export interface OpenCall {
  readonly callId: number;
  readonly replyNode: string;
  done: boolean;
  ac: AbortController | undefined;
}

/** How an actor answers a call (its host). */
export interface Answerer<C> {
  reply(call: C, ok: boolean, value: unknown, transfer?: readonly object[]): void;
}

/**
 * State an actor rarely needs, allocated on first use so an idle actor stays small: its pending
 * `receive`, the call it handles and the calls it holds open (deferred replies), its context,
 * links, monitors, watchers and names. `Ctx` and `Ref` are the actor's context and ref types
 * (left open here so this module depends on nothing of the actor's). @internal
 */
export class ActorExtras<C extends OpenCall, Ctx, Ref> {
  waiter: Waiter | undefined = undefined;
  current: C | undefined = undefined;
  ctx: Ctx | undefined = undefined;
  links: Map<string, Ref> | undefined = undefined;
  monitors: Map<string, Ref> | undefined = undefined;
  watchers: Map<string, Ref> | undefined = undefined;
  names: string[] | undefined = undefined;
  /**
   * Calls taken and held open past `current`: deferred ones, and for a process the call it took
   * before `current` if still unanswered when it took the next (actor.ts `#take`; a process's
   * unanswered calls are `current` and these, so a receive/reply loop touches no Set). A
   * behaviour's calls taken with `receive` inside its handler are all here (`#after` answers
   * the handled call, which is not, with undefined when the handler did not).
   */
  openCalls: Set<C> | undefined = undefined;

  /**
   * The caller of call `callId` from node `origin` cancelled it: if it is the current call or an
   * open one, mark it answered (a later reply is dropped) and abort its `ctx.signal`. False when
   * it is neither (it may still wait in the mailbox).
   */
  cancel(origin: string, callId: number): boolean {
    const is = (c: C) => c.callId === callId && c.replyNode === origin;
    let call: C | undefined;
    if (this.current !== undefined && is(this.current)) call = this.current;
    if (call === undefined && this.openCalls) for (const c of this.openCalls) if (is(c)) call = c;
    if (call === undefined) return false;
    if (call.done) return true;
    call.done = true;
    this.openCalls?.delete(call);
    call.ac?.abort(new TroupeError('ABORTED', 'the caller cancelled the call'));
    return true;
  }

  /** The caller's node `node` was lost: abort the signals of its calls held open here. */
  abortFrom(node: string): void {
    const lost = (c: C | undefined): void => {
      if (c !== undefined && c.replyNode === node && c.ac !== undefined && !c.done)
        c.ac.abort(new TroupeError('NODE_DOWN', `the caller's node ${node} was lost`));
    };
    lost(this.current);
    if (this.openCalls) for (const c of this.openCalls) lost(c);
  }

  /** The AbortSignal of the call being handled (aborted if its caller cancels it). */
  callSignal(): AbortSignal | undefined {
    const call = this.current;
    if (call === undefined) return undefined;
    return (call.ac ??= new AbortController()).signal;
  }

  /** Answer the current call (if any, and not answered yet). */
  replyCurrent(answer: Answerer<C>, value: unknown, transfer?: readonly object[]): boolean {
    const call = this.current;
    if (!call || call.done) return false;
    this.openCalls?.delete(call);
    answer.reply(call, true, value, transfer);
    return true;
  }

  /** Keep the current call open; returns a function that answers it later. */
  deferCurrent(answer: Answerer<C>): (value: unknown, transfer?: readonly object[]) => boolean {
    const call = this.current;
    if (!call) return () => false;
    (this.openCalls ??= new Set()).add(call);
    return (value, transfer) => {
      if (call.done) return false;
      this.openCalls?.delete(call);
      answer.reply(call, true, value, transfer);
      return true;
    };
  }

  /**
   * The actor ends: add to `calls` those open here and not answered, and end a pending
   * `receive` (its process function unwinds; its `finally` blocks run).
   */
  teardown(calls: C[], clock: Clock): void {
    if (this.openCalls) for (const c of this.openCalls) if (!c.done) calls.push(c);
    // The call being handled when the handler threw is in neither the mailbox nor openCalls:
    // without this its caller would wait for its timeout instead of getting ACTOR_EXITED.
    const cur = this.current;
    if (cur !== undefined && !cur.done && !this.openCalls?.has(cur)) calls.push(cur);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      if (w.timer !== undefined) clock.clearTimeout(w.timer);
      w.off?.();
      w.reject(new TroupeError('ACTOR_EXITED', 'actor exited while waiting in receive'));
    }
  }
}

/** What dropping a queued call needs of a mailbox. */
interface Queue {
  readonly start: number;
  readonly end: number;
  at(i: number): unknown;
  removeAt(i: number): void;
}

/** Drop call `callId` of node `origin` from `queue` if it still waits there (its caller cancelled it). */
export function dropQueuedCall<C extends OpenCall>(
  queue: Queue,
  callOf: (item: unknown) => C | undefined,
  origin: string,
  callId: number,
): void {
  for (let i = queue.start; i < queue.end; i++) {
    const c = callOf(queue.at(i));
    if (c === undefined || c.callId !== callId || c.replyNode !== origin) continue;
    c.done = true;
    queue.removeAt(i);
    return;
  }
}

/**
 * OTP supervisors on troupe's public actor API: a supervisor is a process that traps exits,
 * links to its children, and applies its strategy when one ends. Operations are calls on its
 * ref (see {@link startChild} and friends). Specs and rules: supervisor-spec.ts; starting a
 * child (locally, on another node by placement, or through a custom start): supervisor-start.ts.
 */
import type { ActorContext } from './actor-context.ts';
import type { ExitReason } from './exit-reason.ts';
import { Exit } from './messages.ts';
import type { ProcessFn } from './behaviour.ts';
import { TroupeError } from './errors.ts';
import type { Answer, SupervisorRequest } from './supervisor-ops.ts';
import { type Child, fail, serveRequest } from './supervisor-serve.ts';
import { downOfMonitor, startChild as startOne } from './supervisor-start.ts';
import {
  MAX_INTENSITY,
  RestartWindow,
  backoffDelay,
  resolveOptions,
  startError,
  shouldRestart,
  type ResolvedSpec,
  type SupervisorOptions,
} from './supervisor-spec.ts';

/** A timer of this supervisor fired: restart `ids` (if `seq` is still theirs). Local only. */
class RestartDue {
  constructor(
    readonly ids: string[],
    readonly seq: number,
    readonly avoid: string | undefined,
  ) {}
}

/** Ends the supervisor's loop with `reason`. */
class Stop {
  constructor(readonly reason: ExitReason) {}
}

class Supervisor {
  readonly #self: ActorContext<unknown>;
  readonly #o: ReturnType<typeof resolveOptions>;
  readonly #window: RestartWindow;
  /** The children, in start order. */
  children: Child[] = [];
  /** Refs of former children (stopped by this supervisor), so a late EXIT of one is not taken for the parent's. */
  #retired = new Map<string, Child>();
  #seq = 0;
  #dynamic = 0;

  constructor(self: ActorContext<unknown>, options: SupervisorOptions) {
    this.#self = self;
    this.#o = resolveOptions(options);
    this.#window = new RestartWindow(this.#o.intensity, this.#o.period);
  }

  /** The restart strategy. */
  get strategy(): SupervisorOptions['strategy'] {
    return this.#o.strategy;
  }

  /** The dynamic template (`simple_one_for_one`) as a spec with a fresh id. */
  dynamicSpec(args: unknown, name: string | undefined): ResolvedSpec {
    const t = this.#o.children[0];
    return {
      ...t,
      id: `${t.id}-${++this.#dynamic}`,
      args: args !== undefined ? args : t.args,
      name,
    };
  }

  get #now(): number {
    return this.#self.node.clock.now();
  }

  child(spec: ResolvedSpec): Child {
    return {
      spec,
      ref: undefined,
      node: undefined,
      stop: undefined,
      status: 'stopped',
      restarts: 0,
      lastExit: undefined,
      startedAt: 0,
      attempts: 0,
      due: 0,
      timer: undefined,
    };
  }

  async run(): Promise<ExitReason> {
    const self = this.#self;
    self.trapExit(true);
    try {
      if (this.#o.strategy !== 'simple_one_for_one') {
        for (const spec of this.#o.children) {
          const c = this.child(spec);
          this.children.push(c);
          try {
            await this.start(c, undefined);
          } catch (err) {
            await this.#terminateAll();
            return { shutdown: { failed_to_start_child: spec.id, reason: startError(err) } };
          }
        }
      }
      for (;;) {
        const m = await self.receive();
        if (m instanceof Exit) await this.#onExit(m);
        else if (m instanceof RestartDue) await this.#onDue(m);
        else if (
          typeof m === 'object' &&
          m !== null &&
          typeof (m as { op?: unknown }).op === 'string'
        ) {
          const answer = self.deferReply();
          answer(await this.#request(m as SupervisorRequest));
        }
        // Anything else (a stray DOWN of a finished shutdown, NAME_LOST, a cast) is dropped.
      }
    } catch (err) {
      if (err instanceof Stop) return err.reason;
      throw err;
    } finally {
      for (const c of this.children) {
        if (c.timer !== undefined) self.node.clock.clearTimeout(c.timer);
        c.timer = undefined;
        // Killed (or its node shut down): its children die by their links; what their start
        // made (a worker, a process) is released here.
        if (c.stop) this.#release(c);
      }
    }
  }

  #load(): Map<string, number> {
    const load = new Map<string, number>();
    for (const c of this.children)
      if (c.ref && c.node) load.set(c.node, (load.get(c.node) ?? 0) + 1);
    return load;
  }

  /** Start `c` (linked); `avoid` is a node the child was just lost with. */
  async start(c: Child, avoid: string | undefined, where?: { node?: string }): Promise<void> {
    const r = await startOne(this.#self, c.spec, this.#load(), c.node, avoid, where);
    c.ref = r.ref;
    c.node = r.node;
    c.stop = r.stop;
    c.status = 'running';
    c.startedAt = this.#now;
  }

  #release(c: Child): void {
    const stop = c.stop;
    c.stop = undefined;
    if (c.ref) {
      this.#retired.set(c.ref.key, c);
      if (this.#retired.size > 4096) this.#retired.delete(this.#retired.keys().next().value!);
    }
    c.ref = undefined;
    try {
      stop?.();
    } catch {
      // A failing release must not take the supervisor down.
    }
  }

  /** OTP's shutdown of one child: exit `shutdown`, wait up to its timeout, then kill. */
  async terminate(c: Child): Promise<void> {
    const self = this.#self;
    if (c.timer !== undefined) self.node.clock.clearTimeout(c.timer);
    c.timer = undefined;
    c.due = 0;
    const ref = c.ref;
    c.status = 'stopped';
    if (!ref) return;
    const mon = self.monitor(ref);
    self.unlink(ref);
    const sd = c.spec.shutdown;
    self.exit(ref, sd === 'brutal_kill' ? 'kill' : 'shutdown');
    let reason: ExitReason;
    if (typeof sd === 'number') {
      try {
        reason = (await downOfMonitor(self, mon, sd)).reason;
      } catch {
        self.exit(ref, 'kill');
        reason = (await downOfMonitor(self, mon)).reason;
      }
    } else reason = (await downOfMonitor(self, mon)).reason;
    // `noproc`: it had already ended; its EXIT, still in the mailbox, brings the real reason.
    c.lastExit = reason;
    this.#release(c);
  }

  /** Stop every child in reverse start order. */
  async #terminateAll(): Promise<void> {
    for (const c of [...this.children].reverse()) await this.terminate(c);
  }

  async #escalate(reason: ExitReason): Promise<never> {
    await this.#terminateAll();
    throw new Stop(reason);
  }

  async #onExit(exit: Exit): Promise<void> {
    // An exit signal's reason is whatever its sender gave (unknown); a child's is an ExitReason.
    const e = exit as Exit & { reason: ExitReason };
    const c = e.from ? this.children.find((x) => x.ref?.equals(e.from)) : undefined;
    const former = e.from ? this.#retired.get(e.from.key) : undefined;
    if (former) {
      this.#retired.delete(e.from!.key);
      if (former.lastExit === 'noproc') former.lastExit = e.reason;
      return;
    }
    if (!c) {
      // An exit signal not from a child: the parent (or anyone) asks this supervisor to stop;
      // a normal exit of a linked non-child is ignored, as in OTP.
      if (e.reason === 'normal' && e.from) return;
      await this.#escalate(e.reason);
      return;
    }
    const lostNode = e.reason === 'noconnection' ? c.node : undefined;
    c.lastExit = e.reason;
    this.#release(c);
    if (!shouldRestart(c.spec.restart, e.reason)) {
      c.status = 'stopped';
      if (c.spec.restart === 'temporary' || this.#o.strategy === 'simple_one_for_one')
        this.remove(c);
      return;
    }
    await this.#restart(c, lostNode);
  }

  remove(c: Child): void {
    this.children = this.children.filter((x) => x !== c);
  }

  /** Apply the strategy to `c`, which ended and is to be restarted. */
  async #restart(c: Child, lostNode: string | undefined): Promise<void> {
    if (!this.#window.add(this.#now)) await this.#escalate(MAX_INTENSITY);
    const i = this.children.indexOf(c);
    const s = this.#o.strategy;
    const group =
      s === 'one_for_all'
        ? [...this.children]
        : s === 'rest_for_one'
          ? this.children.slice(i)
          : [c];
    for (const g of [...group].reverse()) if (g !== c) await this.terminate(g);
    for (const g of group) if (g !== c && g.spec.restart === 'temporary') this.remove(g);
    const ids = group
      .filter((g) => g === c || g.spec.restart !== 'temporary')
      .map((g) => g.spec.id);
    const b = this.#o.backoff;
    let delay = 0;
    if (b) {
      if (this.#now - c.startedAt >= b.reset) c.attempts = 0;
      c.attempts++;
      delay = backoffDelay(b, c.attempts);
    }
    await this.#schedule(ids, delay, lostNode);
  }

  /** Restart `ids` now or after `delay` ms. */
  async #schedule(ids: string[], delay: number, lostNode?: string): Promise<void> {
    const seq = ++this.#seq;
    const group = this.children.filter((x) => ids.includes(x.spec.id));
    for (const g of group) {
      g.status = 'restarting';
      g.due = seq;
    }
    if (delay <= 0) return this.#startGroup(group, seq, lostNode);
    const self = this.#self;
    const timer = self.node.clock.setTimeout(() => {
      for (const g of group) if (g.timer === timer) g.timer = undefined;
      self.ref.send(new RestartDue(ids, seq, lostNode));
    }, delay);
    for (const g of group) g.timer = timer;
  }

  async #onDue(d: RestartDue): Promise<void> {
    const group = this.children.filter(
      (x) => d.ids.includes(x.spec.id) && x.status === 'restarting' && x.due === d.seq,
    );
    await this.#startGroup(group, d.seq, d.avoid);
  }

  /** Start a group in start order; a start that fails counts as a restart and is tried again. */
  async #startGroup(group: Child[], seq: number, lostNode?: string): Promise<void> {
    const ordered = this.children.filter((x) => group.includes(x));
    for (let k = 0; k < ordered.length; k++) {
      const g = ordered[k];
      if (g.status !== 'restarting' || g.due !== seq) continue;
      const where: { node?: string } = {};
      try {
        await this.start(g, lostNode, where);
        g.restarts++;
        g.due = 0;
      } catch (err) {
        g.lastExit = startError(err);
        if (!this.#window.add(this.#now)) await this.#escalate(MAX_INTENSITY);
        const rest = ordered.slice(k).map((x) => x.spec.id);
        const b = this.#o.backoff;
        let delay = 0;
        if (b) delay = backoffDelay(b, ++g.attempts);
        // Try again through the mailbox, so calls and exits are served in between; a placement
        // then avoids the node that just failed (unless it is this one).
        const avoid =
          where.node !== undefined && where.node !== this.#self.node.id ? where.node : lostNode;
        return this.#schedule(rest, Math.max(delay, 1), avoid);
      }
    }
  }

  async #request(r: SupervisorRequest): Promise<Answer> {
    try {
      return await serveRequest(this, r);
    } catch (err) {
      if (err instanceof Stop) throw err;
      const e =
        err instanceof TroupeError
          ? err
          : new TroupeError('INVALID_MESSAGE', err instanceof Error ? err.message : String(err));
      return fail(e.code, e.message, e.details);
    }
  }

  find(id: unknown): Child | undefined {
    return this.children.find((c) => c.spec.id === id);
  }
}

/**
 * A supervisor (OTP's): spawn the process function it returns, name it, link it, nest it as a
 * child of type `supervisor`. It traps exits, starts its children in order and restarts them
 * per its strategy; more than `intensity` restarts within `period` ms stop every child in
 * reverse start order and end it with reason `reached_max_restart_intensity`, which its own
 * supervisor sees as a child exit. An exit signal from a non-child (its parent) stops its
 * children in reverse order, then it exits with that reason. A child that fails to start at
 * first ends it with `{ shutdown: { failed_to_start_child, reason } }`.
 * @throws {TroupeError} `INVALID_MESSAGE` for bad options (at once, not when spawned).
 * @example
 * const sup = node.spawn(supervisor({ strategy: 'one_for_one', children: [{ id: 'cache', start: cache, name: 'cache' }] }));
 * await whichChildren(sup);
 */
export function supervisor(options: SupervisorOptions): ProcessFn<SupervisorRequest> {
  resolveOptions(options);
  return async (self) => {
    const reason = await new Supervisor(self as ActorContext<unknown>, options).run();
    if (reason !== 'normal') self.exit(reason);
  };
}

export { MAX_INTENSITY } from './supervisor-spec.ts';
export {
  startChild,
  terminateChild,
  restartChild,
  deleteChild,
  whichChildren,
  countChildren,
} from './supervisor-ops.ts';
export type { SupervisorRequest, SupervisorRef } from './supervisor-ops.ts';
export type {
  Backoff,
  ChildCounts,
  ChildInfo,
  ChildSpec,
  ChildStart,
  Placement,
  RestartType,
  Shutdown,
  Started,
  Strategy,
  SupervisorOptions,
} from './supervisor-spec.ts';
export { REGISTRAR, serveSupervision } from './supervisor-start.ts';

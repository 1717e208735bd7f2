/**
 * The data side of supervision: child specs, supervisor options, and the pure rules a
 * supervisor applies (restart decision, restart intensity, backoff delays). The actor that
 * applies them is in supervisor.ts; how a child is started is in supervisor-start.ts.
 */
import type { ActorContext } from './actor-context.ts';
import type { ExitReason } from './exit-reason.ts';
import type { ActorRef } from './actor-ref.ts';
import type { Behaviour, ProcessFn } from './behaviour.ts';
import { TroupeError } from './errors.ts';

/**
 * How a supervisor restarts: `one_for_one` only the child that ended; `one_for_all` every child
 * (the others are stopped first, in reverse start order); `rest_for_one` the child and those
 * started after it; `simple_one_for_one` a dynamic supervisor whose children are all started
 * from one template spec with `startChild(sup, { args })`.
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';

/**
 * When a child is restarted: `permanent` always; `transient` only after an abnormal exit (not
 * `normal`, `shutdown` or `{ shutdown: … }`); `temporary` never (its spec is removed when it ends).
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';

/**
 * How a child is stopped: a number of ms to wait after the exit signal `shutdown` before
 * killing it; `brutal_kill` kills at once; `infinity` waits as long as it takes (the default for
 * a child of type `supervisor`).
 */
export type Shutdown = number | 'brutal_kill' | 'infinity';

/**
 * Where a child runs: a node id, or a placement over the live members (this node and every
 * node it reaches): `'spread'` picks the member running the fewest of this supervisor's
 * children, `{ spread: ids }` does so among `ids` only, a function picks one itself. On a lost
 * node (`noconnection`) the child is restarted where the placement now says.
 */
export type Placement =
  | string
  | 'spread'
  | { spread: string[] }
  | ((members: string[], child: { id: string; previous?: string }) => string | undefined);

/** What a custom start function returns: the child's ref and, optionally, how to release what it made. */
export interface Started {
  ref: ActorRef<any, any>;
  /** Called once after the child ended and the supervisor saw it (close a worker, a process). */
  stop?: () => void;
}

/**
 * How to start a child: a behaviour or a process function (spawned on the supervisor's node
 * with `args`); `{ behaviour, args, node? }`, a named behaviour of a node's behaviour table
 * (its args are checked by that table's zod schema), on `node` or this node; or
 * `{ start(ctx) }`, a function that creates the child (a worker, a process) and returns its ref.
 */
export type ChildStart =
  | Behaviour<any, any, any, any>
  | ProcessFn<any>
  | { behaviour: string; args?: unknown; node?: Placement }
  | { start: (ctx: ActorContext<unknown>) => Promise<Started> | Started };

/** One child of a supervisor (OTP's child spec). */
export interface ChildSpec {
  /** Unique among the supervisor's children. */
  id: string;
  start: ChildStart;
  /** Arguments of a behaviour's `init` or a process function's second parameter. */
  args?: unknown;
  /** @default 'permanent' */
  restart?: RestartType;
  /** @default 5000 for a worker, 'infinity' for a supervisor */
  shutdown?: Shutdown;
  /** @default 'worker' */
  type?: 'worker' | 'supervisor';
  /** A registered name the child gets on every (re)start. */
  name?: string;
}

/**
 * Delay restarts of a child that keeps crashing: `initial × factor^(n−1)` for its n-th
 * consecutive restart, at most `max`, spread by ±`jitter` (a fraction). The count starts again
 * when the child ran `reset` ms without ending.
 */
export interface Backoff {
  /** @default 100 */
  initial?: number;
  /** @default 10000 */
  max?: number;
  /** @default 2 */
  factor?: number;
  /** @default 0.2 */
  jitter?: number;
  /** @default max */
  reset?: number;
  /** Random source in [0, 1). @default Math.random */
  random?: () => number;
}

/** Options of {@link supervisor}. */
export interface SupervisorOptions {
  /** @default 'one_for_one' */
  strategy?: Strategy;
  /** Restarts allowed within `period` before the supervisor gives up. @default 1 */
  intensity?: number;
  /** @default 5000 (ms) */
  period?: number;
  /** Started in order, stopped in reverse order. For `simple_one_for_one`: exactly one template. */
  children?: ChildSpec[];
  /** Delay restarts (see {@link Backoff}). @default none: restart at once */
  backoff?: Backoff;
}

/** What {@link whichChildren} reports per child. */
export interface ChildInfo {
  id: string;
  /** The running child; undefined while stopped or waiting to restart. */
  ref: ActorRef<any, any> | undefined;
  /** The node it runs (or last ran) on. */
  node: string | undefined;
  type: 'worker' | 'supervisor';
  restart: RestartType;
  status: 'running' | 'restarting' | 'stopped';
  /** How many times it was restarted. */
  restarts: number;
  /** The reason of its last exit. */
  lastExit?: ExitReason;
  name?: string;
}

/** What {@link countChildren} reports. */
export interface ChildCounts {
  specs: number;
  active: number;
  supervisors: number;
  workers: number;
}

/** The exit reason of a supervisor that exceeded its restart intensity (OTP's). */
export const MAX_INTENSITY = 'reached_max_restart_intensity';

/** The exit reason recorded for a start that threw (as an actor that threw would have). */
export function startError(err: unknown): ExitReason {
  if (err instanceof TroupeError)
    return { type: 'error', name: err.name, message: err.message, code: err.code };
  if (err instanceof Error) return { type: 'error', name: err.name, message: err.message };
  return { type: 'error', name: 'Error', message: String(err) };
}

/** Whether a `transient` child that ended with `reason` is restarted (OTP: not on normal/shutdown). */
export function isAbnormalChildExit(reason: ExitReason): boolean {
  if (reason === 'normal' || reason === 'shutdown') return false;
  if (typeof reason === 'object' && reason !== null && 'shutdown' in reason) return false;
  return true;
}

/** Whether a child ending with `reason` is restarted. */
export function shouldRestart(restart: RestartType, reason: ExitReason): boolean {
  if (restart === 'permanent') return true;
  if (restart === 'temporary') return false;
  return isAbnormalChildExit(reason);
}

/** A spec with its defaults filled in. */
export type ResolvedSpec = Required<Omit<ChildSpec, 'name' | 'args'>> &
  Pick<ChildSpec, 'name' | 'args'>;

const bad = (message: string): TroupeError => new TroupeError('INVALID_MESSAGE', message);

/** Check a child spec and fill its defaults. @throws {TroupeError} `INVALID_MESSAGE`. */
export function resolveSpec(spec: ChildSpec): ResolvedSpec {
  if (typeof spec !== 'object' || spec === null) throw bad('a child spec must be an object');
  if (typeof spec.id !== 'string' || spec.id === '')
    throw bad('a child spec needs a non-empty string id');
  const s = spec.start as unknown;
  const ok =
    typeof s === 'function' ||
    (typeof s === 'object' &&
      s !== null &&
      (typeof (s as { handle?: unknown }).handle === 'function' ||
        typeof (s as { behaviour?: unknown }).behaviour === 'string' ||
        typeof (s as { start?: unknown }).start === 'function'));
  if (!ok)
    throw bad(
      `child "${spec.id}": start must be a behaviour, a process function, { behaviour } or { start }`,
    );
  const type = spec.type ?? 'worker';
  if (type !== 'worker' && type !== 'supervisor')
    throw bad(`child "${spec.id}": type must be worker or supervisor`);
  const restart = spec.restart ?? 'permanent';
  if (!['permanent', 'transient', 'temporary'].includes(restart))
    throw bad(`child "${spec.id}": bad restart type`);
  const shutdown = spec.shutdown ?? (type === 'supervisor' ? 'infinity' : 5000);
  if (
    !(
      shutdown === 'brutal_kill' ||
      shutdown === 'infinity' ||
      (typeof shutdown === 'number' && shutdown >= 0)
    )
  )
    throw bad(`child "${spec.id}": bad shutdown`);
  if (spec.name !== undefined && (typeof spec.name !== 'string' || spec.name === ''))
    throw bad(`child "${spec.id}": bad name`);
  return {
    id: spec.id,
    start: spec.start,
    restart,
    shutdown,
    type,
    name: spec.name,
    args: spec.args,
  };
}

/** Options with defaults filled in. */
export interface ResolvedSupervisorOptions {
  strategy: Strategy;
  intensity: number;
  period: number;
  children: ResolvedSpec[];
  backoff: Required<Backoff> | undefined;
}

/** Check supervisor options. @throws {TroupeError} `INVALID_MESSAGE`. */
export function resolveOptions(o: SupervisorOptions): ResolvedSupervisorOptions {
  const strategy = o.strategy ?? 'one_for_one';
  if (!['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'].includes(strategy))
    throw bad(`unknown strategy "${strategy}"`);
  const intensity = o.intensity ?? 1;
  const period = o.period ?? 5000;
  if (!(Number.isInteger(intensity) && intensity >= 0))
    throw bad('intensity must be an integer ≥ 0');
  if (!(period > 0)) throw bad('period must be > 0');
  const children = (o.children ?? []).map(resolveSpec);
  const ids = new Set<string>();
  for (const c of children) {
    if (ids.has(c.id)) throw bad(`duplicate child id "${c.id}"`);
    ids.add(c.id);
  }
  if (strategy === 'simple_one_for_one' && children.length !== 1)
    throw bad('simple_one_for_one needs exactly one child spec (the template)');
  let backoff: Required<Backoff> | undefined;
  if (o.backoff) {
    const b = o.backoff;
    const max = b.max ?? 10_000;
    backoff = {
      initial: b.initial ?? 100,
      max,
      factor: b.factor ?? 2,
      jitter: b.jitter ?? 0.2,
      reset: b.reset ?? max,
      random: b.random ?? Math.random,
    };
    if (
      !(
        backoff.initial >= 0 &&
        backoff.max >= backoff.initial &&
        backoff.factor >= 1 &&
        backoff.jitter >= 0 &&
        backoff.jitter <= 1
      )
    )
      throw bad('bad backoff');
  }
  return { strategy, intensity, period, children, backoff };
}

/** The delay before a child's `attempt`-th consecutive restart (1-based). */
export function backoffDelay(b: Required<Backoff>, attempt: number): number {
  const base = Math.min(b.max, b.initial * b.factor ** Math.max(0, attempt - 1));
  const spread = base * b.jitter * (2 * b.random() - 1);
  return Math.max(0, Math.min(b.max, Math.round(base + spread)));
}

/**
 * OTP's restart intensity: remembers restart times; `add(now)` records one and says whether the
 * supervisor may go on (at most `intensity` restarts within the last `period` ms).
 */
export class RestartWindow {
  #times: number[] = [];
  constructor(
    readonly intensity: number,
    readonly period: number,
  ) {}

  add(now: number): boolean {
    this.#times.push(now);
    this.#times = this.#times.filter((t) => now - t <= this.period);
    return this.#times.length <= this.intensity;
  }
}

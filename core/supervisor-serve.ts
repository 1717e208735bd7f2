import type { ActorRef } from './actor-ref.ts';
import type { ExitReason } from './exit-reason.ts';
import type { Answer, SupervisorRequest } from './supervisor-ops.ts';
import {
  resolveSpec,
  type ChildCounts,
  type ChildInfo,
  type ResolvedSpec,
  type SupervisorOptions,
} from './supervisor-spec.ts';

/** One child of a supervisor, as the supervisor keeps it. */
export interface Child {
  spec: ResolvedSpec;
  ref: ActorRef<any, any> | undefined;
  node: string | undefined;
  stop: (() => void) | undefined;
  status: 'running' | 'restarting' | 'stopped';
  restarts: number;
  lastExit: ExitReason | undefined;
  startedAt: number;
  /** Consecutive restarts (for backoff). */
  attempts: number;
  /** The restart waiting for a timer, and its timer. */
  due: number;
  timer: unknown;
}

/** A failed answer to a supervisor request. */
export const fail = (code: string, message: string, details?: unknown): Answer => ({
  ok: false,
  code,
  message,
  details,
});

/** What answering requests needs from the supervisor. */
export interface ServeHost {
  readonly strategy: SupervisorOptions['strategy'];
  readonly children: Child[];
  /** The dynamic template (`simple_one_for_one`) as a spec with a fresh id. */
  dynamicSpec(args: unknown, name: string | undefined): ResolvedSpec;
  find(id: unknown): Child | undefined;
  child(spec: ResolvedSpec): Child;
  start(c: Child, avoid: string | undefined): Promise<void>;
  terminate(c: Child): Promise<void>;
  remove(c: Child): void;
}

/**
 * Answer a supervisor request (start, terminate, restart, delete a child; list and count them):
 * the supervisor's operations (core/supervisor-ops.ts) as its loop serves them.
 */
export async function serveRequest(sup: ServeHost, r: SupervisorRequest): Promise<Answer> {
  switch (r.op) {
    case 'start_child': {
      let spec: ResolvedSpec;
      if (sup.strategy === 'simple_one_for_one') {
        spec = sup.dynamicSpec(r.args, r.name);
      } else {
        if (!r.spec) return fail('INVALID_MESSAGE', 'start_child needs a spec');
        spec = resolveSpec(r.spec);
        const had = sup.find(spec.id);
        if (had)
          return fail('NAME_TAKEN', had.ref ? 'already_started' : 'already_present', {
            reason: had.ref ? 'already_started' : 'already_present',
            ref: had.ref,
          });
      }
      const c = sup.child(spec);
      sup.children.push(c);
      try {
        await sup.start(c, undefined);
      } catch (err) {
        sup.remove(c);
        throw err;
      }
      return { ok: true, value: c.ref };
    }
    case 'terminate_child': {
      const c = sup.find(r.id);
      if (!c) return fail('NO_ACTOR', `no child "${String(r.id)}"`, { reason: 'not_found' });
      await sup.terminate(c);
      if (c.spec.restart === 'temporary' || sup.strategy === 'simple_one_for_one') sup.remove(c);
      return { ok: true };
    }
    case 'restart_child': {
      const c = sup.find(r.id);
      if (!c) return fail('NO_ACTOR', `no child "${String(r.id)}"`, { reason: 'not_found' });
      if (c.status !== 'stopped')
        return fail('INVALID_MESSAGE', `child "${c.spec.id}" is ${c.status}`, {
          reason: c.status,
        });
      await sup.start(c, undefined);
      return { ok: true, value: c.ref };
    }
    case 'delete_child': {
      const c = sup.find(r.id);
      if (!c) return fail('NO_ACTOR', `no child "${String(r.id)}"`, { reason: 'not_found' });
      if (c.status !== 'stopped')
        return fail('INVALID_MESSAGE', `child "${c.spec.id}" is ${c.status}`, {
          reason: c.status,
        });
      sup.remove(c);
      return { ok: true };
    }
    case 'which_children':
      return { ok: true, value: sup.children.map((c) => info(c)) };
    case 'count_children': {
      const counts: ChildCounts = {
        specs: sup.children.length,
        active: 0,
        supervisors: 0,
        workers: 0,
      };
      for (const c of sup.children) {
        if (c.ref) counts.active++;
        if (c.spec.type === 'supervisor') counts.supervisors++;
        else counts.workers++;
      }
      return { ok: true, value: counts };
    }
    default:
      return fail('INVALID_MESSAGE', 'unknown supervisor request');
  }
}

function info(c: Child): ChildInfo {
  const info: ChildInfo = {
    id: c.spec.id,
    ref: c.ref,
    node: c.node,
    type: c.spec.type,
    restart: c.spec.restart,
    status: c.status,
    restarts: c.restarts,
  };
  if (c.lastExit !== undefined) info.lastExit = c.lastExit;
  if (c.spec.name !== undefined) info.name = c.spec.name;
  return info;
}

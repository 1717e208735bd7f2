/**
 * The operations on a supervisor, as typed calls on its ref (OTP's `supervisor:start_child/2`
 * and friends). The supervisor's side is in supervisor.ts.
 */
import type { ActorRef } from './actor-ref.ts';
import { TroupeError, isErrorCode } from './errors.ts';
import type { ChildCounts, ChildInfo, ChildSpec } from './supervisor-spec.ts';

/** The calls a supervisor answers (use the typed helpers {@link startChild} etc.). */
export type SupervisorRequest =
  | { op: 'start_child'; spec?: ChildSpec; args?: unknown; name?: string }
  | { op: 'terminate_child'; id: string }
  | { op: 'restart_child'; id: string }
  | { op: 'delete_child'; id: string }
  | { op: 'which_children' }
  | { op: 'count_children' };

/** A supervisor's ref. */
export type SupervisorRef = ActorRef<SupervisorRequest>;

/** What a supervisor answers: plain data, so it crosses nodes. @internal */
export type Answer =
  | { ok: true; value?: unknown }
  | { ok: false; code: string; message: string; details?: unknown };

async function ask<T>(
  sup: ActorRef<SupervisorRequest, any>,
  req: SupervisorRequest,
  timeout?: number,
): Promise<T> {
  const a = (await sup.call(req, timeout === undefined ? undefined : { timeout })) as Answer;
  if (a.ok) return a.value as T;
  throw new TroupeError(isErrorCode(a.code) ? a.code : 'PROTOCOL_ERROR', a.message, {
    details: a.details,
  });
}

/**
 * Start a child: `spec` for a static supervisor; `{ args, name }` (the template's args and no
 * name by default) for a `simple_one_for_one` one. Resolves with the child's ref.
 * @throws {TroupeError} `NAME_TAKEN` (id or name taken), the start's error.
 */
export function startChild(
  sup: ActorRef<SupervisorRequest, any>,
  spec: ChildSpec | { args?: unknown; name?: string },
  timeout?: number,
): Promise<ActorRef<any, any>> {
  const req: SupervisorRequest =
    'id' in spec
      ? { op: 'start_child', spec }
      : { op: 'start_child', args: spec.args, name: spec.name };
  return ask(sup, req, timeout);
}

/** Stop child `id` (it stays as a spec unless temporary or dynamic). @throws {TroupeError} `NO_ACTOR` (not_found). */
export function terminateChild(sup: ActorRef<SupervisorRequest, any>, id: string): Promise<void> {
  return ask(sup, { op: 'terminate_child', id });
}

/** Start a stopped child again. @throws {TroupeError} `NO_ACTOR` (not_found), `INVALID_MESSAGE` (running/restarting). */
export function restartChild(
  sup: ActorRef<SupervisorRequest, any>,
  id: string,
): Promise<ActorRef<any, any>> {
  return ask(sup, { op: 'restart_child', id });
}

/** Remove a stopped child's spec. @throws {TroupeError} `NO_ACTOR` (not_found), `INVALID_MESSAGE` (running/restarting). */
export function deleteChild(sup: ActorRef<SupervisorRequest, any>, id: string): Promise<void> {
  return ask(sup, { op: 'delete_child', id });
}

/** Every child in start order, with its ref, node, status, restart count and last exit reason. */
export function whichChildren(
  sup: ActorRef<SupervisorRequest, any>,
  timeout?: number,
): Promise<ChildInfo[]> {
  return ask(sup, { op: 'which_children' }, timeout);
}

/** How many specs, running children, supervisors and workers. */
export function countChildren(sup: ActorRef<SupervisorRequest, any>): Promise<ChildCounts> {
  return ask(sup, { op: 'count_children' });
}

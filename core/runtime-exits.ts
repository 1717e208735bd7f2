import type { Actor } from './actor.ts';
import type { ActorLinks } from './actor-links.ts';
import { TroupeError } from './errors.ts';
import type { Emitter } from './events.ts';
import { type ExitReason, isErrorReason } from './exit-reason.ts';
import type { NodeEvents } from './node-options.ts';
import type { Registry } from './registry.ts';

/** What ending an actor needs from its runtime. @internal */
export interface ExitHost {
  readonly events: Emitter<NodeEvents>;
  readonly actors: Map<number, Actor>;
  readonly actorLinks: ActorLinks;
  readonly registry: Registry;
  replyTo(node: string, callId: number, ok: boolean, value: unknown): void;
}

/** end an actor: settle its calls, fire its links and monitors, drop its names */
export function endActor(host: ExitHost, actor: Actor, reason: ExitReason, result?: unknown): void {
  if (!actor.alive) return;
  const calls = actor.teardown();
  host.actors.delete(actor.id);
  host.actorLinks.forget(actor);
  const ref = actor.ref;
  for (const c of calls) {
    c.done = true;
    host.replyTo(
      c.replyNode,
      c.callId,
      false,
      new TroupeError(
        'ACTOR_EXITED',
        `actor ${ref.key} exited (${describeReason(reason)}) before replying`,
        { details: { reason } },
      ),
    );
  }
  if (actor.names) for (const name of actor.names) host.registry.unregister(name, ref);
  const b = actor.behaviour;
  if (b?.terminate) {
    try {
      b.terminate(reason, actor.state);
    } catch (err) {
      host.events.emit('listenerError', { error: err });
    }
  }
  host.actorLinks.ended(actor, reason, result);
  if (isErrorReason(reason)) host.events.emit('actorCrashed', { ref, reason });
}

function describeReason(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (isErrorReason(reason)) return `${reason.name}: ${reason.message}`;
  try {
    return JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}

import { randomBytes } from '@noble/hashes/utils.js';
import { Actor } from './actor.ts';
import type { ActorHost } from './actor-context.ts';
import type { ActorLinks } from './actor-links.ts';
import type { AnyActorRef } from './actor-ref.ts';
import type { Behaviour, ProcessFn, SpawnOptions } from './behaviour.ts';
import { TroupeError } from './errors.ts';
import type { ResolvedOptions } from './node-options.ts';
import type { Registry } from './registry.ts';
import { checkOf, type MessageSchema } from './schema-check.ts';
import type { z } from 'zod';

/** What spawning a local actor needs from its runtime (which is also the actor's host). @internal */
export interface SpawnHost extends ActorHost<Actor> {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly isShutdown: boolean;
  readonly actors: Map<number, Actor>;
  readonly registry: Registry;
  readonly actorLinks: ActorLinks;
  /** What each schema validates with (see core/schema-check.ts), one per schema. */
  readonly schemaChecks: WeakMap<z.ZodType, MessageSchema>;
  /** Take the next local actor id. */
  newActorId(): number;
  ref(node: string, id: number): AnyActorRef;
  register(name: string, ref: AnyActorRef): boolean;
}

/**
 * Spawn an actor on `host`'s node. `remoteWatch`: a monitor held by another node's actor, set
 * before the actor runs (remote spawn).
 * @throws {TroupeError} `SHUTDOWN`, `NAME_TAKEN`.
 */
export function spawnLocal(
  host: SpawnHost,
  what: ProcessFn<any> | Behaviour<any, any, any>,
  options: SpawnOptions,
  remoteWatch?: { mid: string; watcher: AnyActorRef },
): AnyActorRef {
  if (host.isShutdown) throw new TroupeError('SHUTDOWN', 'node is shut down');
  if (options.name !== undefined && host.registry.get(options.name)) {
    throw new TroupeError('NAME_TAKEN', `name "${options.name}" is already registered`);
  }
  const id = host.newActorId();
  const ref = host.ref(host.id, id);
  const isFn = typeof what === 'function';
  const actor = new Actor(
    host,
    id,
    ref,
    isFn ? 'process' : 'behaviour',
    options.maxMailbox ?? host.options.maxMailbox,
  );
  const schema = options.schema ?? (isFn ? undefined : what.schema);
  if (schema !== undefined) actor.schema = checkOf(schema, host.schemaChecks);
  if (options.trapExit) actor.trapExit = true;
  host.actors.set(id, actor);
  if (options.name !== undefined) host.register(options.name, ref);
  if (remoteWatch) host.actorLinks.watchedFrom(actor, remoteWatch.mid, remoteWatch.watcher);
  if (options.link) host.actorLinks.link(actor, options.link);
  if (options.monitor) {
    const watcher =
      options.monitor.node === host.id ? host.actors.get(options.monitor.id) : undefined;
    if (watcher) host.actorLinks.monitor(watcher, ref);
  }
  if (!actor.alive) return ref; // linked to something already dead
  if (isFn) {
    const fn = what;
    actor.startProcess(options.args === undefined ? fn : (self) => fn(self, options.args));
  } else {
    actor.startBehaviour(what, options.args);
  }
  return ref;
}

/**
 * A random start below 2^30 for a node's actor ids. Actor ids start at a random point in each
 * incarnation (a stand-in for Erlang's "creation"): refs from a previous life of a node restarted
 * under the same id reach no actor (`NO_ACTOR`) instead of a stranger, unless the two lives' id
 * ranges happen to overlap (for k actors per life, a chance of about 2k/2^30). Ids stay small
 * integers (V8 Smis up to 2^31), which keeps actor tables and headers compact.
 */
export function actorIdBase(): number {
  const r = randomBytes(4);
  return ((r[0] << 22) | (r[1] << 14) | (r[2] << 6) | (r[3] >> 2)) & 0x3fffffff;
}

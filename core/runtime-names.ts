import type { Actor } from './actor.ts';
import type { AnyActorRef } from './actor-ref.ts';
import type { Emitter } from './events.ts';
import { NameLost } from './messages.ts';
import type { NodeEvents } from './node-options.ts';
import type { Registry } from './registry.ts';

/** What names need from their runtime. @internal */
export interface NamesHost {
  readonly id: string;
  readonly events: Emitter<NodeEvents>;
  readonly actors: ReadonlyMap<number, Actor>;
  readonly registry: Registry;
}

/**
 * The registry's local side (a part of the runtime): names of this node's actors, kept on the
 * actors too (so an exit drops them), and a lost name conflict told to its actor. @internal
 */
export class Names {
  readonly #h: NamesHost;

  constructor(host: NamesHost) {
    this.#h = host;
  }

  /**
   * Register `ref` under `name`, cluster-wide. Returns false if this node already sees the name
   * taken. A concurrent claim on another node is resolved deterministically (see README); the
   * loser's actor receives a `NAME_LOST` message.
   */
  register(name: string, ref: AnyActorRef): boolean {
    if (ref.node === this.#h.id) {
      const actor = this.#h.actors.get(ref.id);
      if (!actor) return false;
      if (!this.#h.registry.register(name, ref)) return false;
      (actor.names ??= []).includes(name) || actor.names.push(name);
      return true;
    }
    // Registering a remote actor: it is the owner's job to remove the name when it dies, so
    // only owners register. Erlang's global allows it; we keep names owned by their node.
    return false;
  }

  /** Remove `name` (only a name owned by one of this node's actors). */
  unregister(name: string): boolean {
    const ref = this.#h.registry.get(name);
    if (!ref || ref.node !== this.#h.id) return false;
    const actor = this.#h.actors.get(ref.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    return this.#h.registry.unregister(name, ref);
  }

  /** Every registered name this node sees. */
  registered(): Map<string, AnyActorRef> {
    return new Map(this.#h.registry.entries());
  }

  nameLost(name: string, loser: AnyActorRef, winner: AnyActorRef): void {
    const actor = this.#h.actors.get(loser.id);
    if (actor?.names) actor.names = actor.names.filter((n) => n !== name);
    this.#h.events.emit('nameConflict', { name, winner, loser });
    actor?.enqueueSystem(new NameLost(name, winner));
  }
}

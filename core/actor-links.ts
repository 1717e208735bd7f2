import { writeDemonitor, writeDown, writeExit, writeLink, writeMonitor } from './envelope-write.ts';
import type { Actor } from './actor.ts';
import { ActorRef, type AnyActorRef, type RefHost } from './actor-ref.ts';
import type { Codec } from './codec.ts';
import { type ExitReason, errorReason } from './exit-reason.ts';
import { Down, Exit } from './messages.ts';
import type { SessionBook } from './session.ts';
import type { TroupeError } from './errors.ts';

/** What the actor links need from the runtime (refs are bound to it). @internal */
export interface ActorLinksHost extends RefHost {
  /** End a local actor. */
  exit(actor: Actor, reason: ExitReason): void;
  /** Encode for `to`; undefined (and a dead letter) if it cannot be. */
  encode(value: unknown, to: string): string | undefined;
  /** Decode a payload for `to`; a failure is reported as an `invalidMessage` event. */
  decodePayload(
    payload: string | undefined,
    to: string,
  ): { ok: true; value: unknown } | { ok: false; error: TroupeError };
}

/** What the actor links need from the link layer (implemented by the Router). @internal */
export interface ActorLinksWire {
  route(node: string): object | undefined;
  emit(node: string, header: string, payload: string | undefined, what: { to: string }): unknown;
}

/**
 * Links and monitors between actors, on this node or across the wire (Erlang semantics), and
 * the exit signals and DOWN messages they carry. Those that cross the wire are tagged with the
 * peer's session count and settled with `noconnection` when the session is lost
 * (core/session.ts). @internal
 */
export class ActorLinks {
  readonly #node: ActorLinksHost;
  readonly #id: string;
  readonly #actors: Map<number, Actor>;
  readonly #sessions: SessionBook;
  readonly #router: ActorLinksWire;
  readonly #codec: Codec;
  #nextMonitor = 1;
  /** Monitors of this node's actors on other nodes; `s`: the target node's session count when made. */
  #remoteMonitors = new Map<string, { watcher: Actor; target: AnyActorRef }>();
  /** This node's actors with a link to, or a watcher on, another node. */
  #remoteBound = new Set<Actor>();

  constructor(
    node: ActorLinksHost,
    actors: Map<number, Actor>,
    sessions: SessionBook,
    router: ActorLinksWire,
    codec: Codec,
  ) {
    this.#node = node;
    this.#id = node.id;
    this.#actors = actors;
    this.#sessions = sessions;
    this.#router = router;
    this.#codec = codec;
  }

  /** Link `actor` with `ref` (see `ActorContext.link`). */
  link(actor: Actor, ref: AnyActorRef): void {
    if (ref.node === this.#id) {
      if (ref.id === actor.id) return;
      const partner = this.#actors.get(ref.id);
      if (!partner) {
        this.exitSignal(actor, ref, 'noproc', undefined, false);
        return;
      }
      (actor.links ??= new Map()).set(ref.key, ref);
      (partner.links ??= new Map()).set(actor.ref.key, actor.ref);
      return;
    }
    if (!this.#router.route(ref.node)) {
      this.exitSignal(actor, ref, 'noconnection', undefined, false);
      return;
    }
    (actor.links ??= new Map()).set(ref.key, ref);
    this.#remoteBound.add(actor);
    const e = this.#sessions.current(ref.node);
    this.#router.emit(
      ref.node,
      writeLink('l', ref.node, this.#id, ref.id, actor.id, e),
      undefined,
      { to: ref.key },
    );
  }

  /** Remove the link between `actor` and `ref`. */
  unlink(actor: Actor, ref: AnyActorRef): void {
    if (!actor.links?.delete(ref.key)) return;
    if (ref.node === this.#id) {
      this.#actors.get(ref.id)?.links?.delete(actor.ref.key);
      return;
    }
    this.#router.emit(ref.node, writeLink('u', ref.node, this.#id, ref.id, actor.id), undefined, {
      to: ref.key,
    });
  }

  /** A new monitor id, unique in the cluster. */
  newMonitorId(): string {
    return `${this.#id}#${this.#nextMonitor++}`;
  }

  /** Monitor `ref` for `watcher`; returns the monitor id. */
  monitor(watcher: Actor, ref: AnyActorRef): string {
    const mid = this.newMonitorId();
    if (ref.node === this.#id) {
      const target = this.#actors.get(ref.id);
      if (!target) {
        watcher.enqueueSystem(new Down(mid, ref, 'noproc'));
        return mid;
      }
      (watcher.monitors ??= new Map()).set(mid, ref);
      (target.watchers ??= new Map()).set(mid, watcher.ref);
      return mid;
    }
    if (!this.#router.route(ref.node)) {
      watcher.enqueueSystem(new Down(mid, ref, 'noconnection'));
      return mid;
    }
    (watcher.monitors ??= new Map()).set(mid, ref);
    this.#remoteMonitors.set(mid, { watcher, target: ref });
    const e = this.#sessions.current(ref.node);
    this.#router.emit(
      ref.node,
      writeMonitor(ref.node, this.#id, ref.id, watcher.id, mid, e),
      undefined,
      { to: ref.key },
    );
    return mid;
  }

  /** Remove `watcher`'s monitor `mid`. */
  demonitor(watcher: Actor, mid: string): void {
    const ref = watcher.monitors?.get(mid);
    if (!ref) return;
    watcher.monitors!.delete(mid);
    if (ref.node === this.#id) {
      this.#actors.get(ref.id)?.watchers?.delete(mid);
      return;
    }
    this.#remoteMonitors.delete(mid);
    this.#router.emit(ref.node, writeDemonitor(ref.node, this.#id, ref.id, mid), undefined, {
      to: ref.key,
    });
  }

  /** A remote spawn's watcher holds monitor `mid` of `actor`, set before the actor runs. */
  watchedFrom(actor: Actor, mid: string, watcher: AnyActorRef): void {
    (actor.watchers ??= new Map()).set(mid, watcher);
    this.#remoteBound.add(actor);
  }

  /**
   * The reply to a remote spawn arrived with the new actor's ref `spawned`: set up `from`'s side
   * of the link and monitor (`mid`) it asked for. A pending call always belongs to the current
   * session (a session's end rejects it), so this state does too.
   */
  spawned(from: Actor, spawned: AnyActorRef, link: boolean, mid: string): void {
    if (link) {
      (from.links ??= new Map()).set(spawned.key, spawned);
      this.#remoteBound.add(from);
    }
    if (mid) {
      (from.monitors ??= new Map()).set(mid, spawned);
      this.#remoteMonitors.set(mid, { watcher: from, target: spawned });
    }
  }

  /** Send an exit signal to `to` from actor `fromId` (0: none) of node `fromNode`. */
  sendExit(
    to: AnyActorRef,
    fromNode: string,
    fromId: number,
    reason: unknown,
    result: unknown,
    viaLink: boolean,
  ): void {
    if (to.node === this.#id) {
      const actor = this.#actors.get(to.id);
      if (actor)
        this.exitSignal(
          actor,
          fromId ? new ActorRef(this.#node, fromNode, fromId) : undefined,
          reason,
          result,
          viaLink,
        );
      return;
    }
    const payload = this.#node.encode(result === undefined ? [reason] : [reason, result], to.key);
    if (payload === undefined) return;
    this.#router.emit(to.node, writeExit(to.node, fromNode, to.id, fromId, viaLink), payload, {
      to: to.key,
    });
  }

  /** Send DOWN of actor `deadId` of `deadNode` to monitor `mid` of actor `watcherId` on `node`. */
  sendDown(
    node: string,
    watcherId: number,
    mid: string,
    deadNode: string,
    deadId: number,
    reason: unknown,
    result: unknown,
  ): void {
    if (node === this.#id) {
      const watcher = this.#actors.get(watcherId);
      if (watcher?.monitors?.delete(mid)) {
        this.#remoteMonitors.delete(mid);
        watcher.enqueueSystem(
          new Down(mid, new ActorRef(this.#node, deadNode, deadId), reason as ExitReason, result),
        );
      }
      return;
    }
    let payload = this.#node.encode([reason, result], node);
    if (payload === undefined)
      payload = this.#codec.encode([
        errorReason(new Error('exit reason could not be serialized'), false),
      ]);
    // DOWN travels from the dead actor's node: its origin is that node.
    this.#router.emit(node, writeDown(node, deadNode, watcherId, mid, deadId), payload, {
      to: node,
    });
  }

  /** Deliver an exit signal to a local actor (Erlang semantics). */
  exitSignal(
    actor: Actor,
    from: AnyActorRef | undefined,
    reason: unknown,
    result: unknown,
    viaLink: boolean,
  ): void {
    if (!actor.alive) return;
    if (viaLink && from) actor.links?.delete(from.key);
    if (reason === 'kill' && !viaLink) {
      this.#node.exit(actor, 'killed');
      return;
    }
    if (actor.trapExit) {
      actor.enqueueSystem(new Exit(from, reason, result));
      return;
    }
    if (reason === 'normal') return;
    this.#node.exit(actor, reason === 'kill' ? 'killed' : (reason as ExitReason));
  }

  /** `actor` is ending: forget its ties to other nodes (its links and monitors fire in {@link ended}). */
  forget(actor: Actor): void {
    this.#remoteBound.delete(actor);
  }

  /** `actor` ended with `reason`: signal its links, send DOWN to its watchers, drop its monitors. */
  ended(actor: Actor, reason: ExitReason, result: unknown): void {
    const ref = actor.ref;
    if (actor.links) {
      for (const partnerRef of actor.links.values()) {
        if (partnerRef.node === this.#id) {
          const partner = this.#actors.get(partnerRef.id);
          if (partner) this.exitSignal(partner, ref, reason, result, true);
        } else {
          this.sendExit(partnerRef, this.#id, actor.id, reason, result, true);
        }
      }
    }
    if (actor.watchers) {
      for (const [mid, w] of actor.watchers)
        this.sendDown(w.node, w.id, mid, this.#id, actor.id, reason, result);
    }
    if (actor.monitors) {
      for (const mid of [...actor.monitors.keys()]) this.demonitor(actor, mid);
    }
  }

  /** Settle every monitor and link with `node` (its session ended): DOWN / exit `noconnection`. */
  settle(node: string): void {
    for (const [mid, m] of this.#remoteMonitors) {
      if (m.target.node !== node) continue;
      this.#remoteMonitors.delete(mid);
      if (m.watcher.monitors?.delete(mid) && m.watcher.alive)
        m.watcher.enqueueSystem(new Down(mid, m.target, 'noconnection'));
    }
    for (const actor of [...this.#remoteBound]) {
      if (actor.watchers)
        for (const [mid, w] of actor.watchers) if (w.node === node) actor.watchers.delete(mid);
      if (actor.links) {
        for (const [key, r] of actor.links) {
          if (r.node !== node) continue;
          actor.links.delete(key);
          if (actor.alive) this.exitSignal(actor, r, 'noconnection', undefined, true);
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Incoming envelopes (x, l/u, m, dm, d)

  /** An exit signal for actor `id` from actor `fromId` (0: none) of `origin`. */
  inExit(
    id: number,
    origin: string,
    fromId: number,
    viaLink: boolean,
    payload: string | undefined,
  ): void {
    const actor = this.#actors.get(id);
    if (!actor) return;
    const d = this.#node.decodePayload(payload, actor.ref.key);
    if (!d.ok) return;
    const [reason, result] = Array.isArray(d.value) ? d.value : [d.value, undefined];
    const from = fromId ? new ActorRef(this.#node, origin, fromId) : undefined;
    if (viaLink && from && !actor.links?.has(from.key)) return; // unlinked meanwhile
    this.exitSignal(actor, from, reason, result, viaLink);
  }

  /** Link (`l`) or unlink (`u`) actor `id` with actor `fromId` of `origin`. */
  inLink(op: 'l' | 'u', id: number, origin: string, fromId: number): void {
    const partner = new ActorRef(this.#node, origin, fromId);
    const actor = this.#actors.get(id);
    if (op === 'u') {
      actor?.links?.delete(partner.key);
      return;
    }
    if (!actor) {
      this.sendExit(partner, this.#id, id, 'noproc', undefined, true);
      return;
    }
    (actor.links ??= new Map()).set(partner.key, partner);
    this.#remoteBound.add(actor);
  }

  /** Actor `watcherId` of `origin` monitors actor `id` (monitor `mid`). */
  inMonitor(id: number, origin: string, watcherId: number, mid: string): void {
    const actor = this.#actors.get(id);
    if (!actor) {
      this.sendDown(origin, watcherId, mid, this.#id, id, 'noproc', undefined);
      return;
    }
    (actor.watchers ??= new Map()).set(mid, new ActorRef(this.#node, origin, watcherId));
    this.#remoteBound.add(actor);
  }

  /** Monitor `mid` of actor `id` was removed by its watcher. */
  inDemonitor(id: number, mid: string): void {
    this.#actors.get(id)?.watchers?.delete(mid);
  }

  /** DOWN for monitor `mid` of actor `watcherId`: actor `id` of `origin` ended. */
  inDown(
    watcherId: number,
    mid: string,
    origin: string,
    id: number,
    payload: string | undefined,
  ): void {
    const watcher = this.#actors.get(watcherId);
    this.#remoteMonitors.delete(mid);
    if (!watcher || !watcher.monitors?.delete(mid)) return;
    const d = this.#node.decodePayload(payload, watcher.ref.key);
    const [reason, result] = d.ok && Array.isArray(d.value) ? d.value : ['noproc', undefined];
    watcher.enqueueSystem(new Down(mid, new ActorRef(this.#node, origin, id), reason, result));
  }
}

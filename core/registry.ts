import { writeRegistry } from './envelope-write.ts';
import type { ActorRef } from './actor-ref.ts';

/** What the registry needs from its node. @internal */
export interface RegistryHost {
  readonly id: string;
  /** Send a registry envelope to every direct link but `except`. */
  broadcast(text: string, except?: unknown): void;
  /** Send a registry envelope on one link. */
  sendOn(link: unknown, text: string): void;
  /** A local actor lost `name` to `winner` in a conflict. */
  lost(name: string, loser: ActorRef<any, any>, winner: ActorRef<any, any>): void;
  refFor(node: string, id: number): ActorRef<any, any>;
  /** Whether this node sees `node` up (a member, or a route to it). */
  isReachable(node: string): boolean;
}

/**
 * Where names live when not gossiped between nodes (`createNode({ registry })`, for example the
 * JetStream KV backend of `troupe/nats`). With a backend, the registry's map is a local cache the
 * backend feeds (`sink`), `register` still answers at once from that cache and asks the backend
 * to claim the name (an atomic create); a refused claim tells the actor `NAME_LOST` like a lost
 * conflict. No registry envelopes travel on links.
 */
export interface RegistryBackend {
  /** Short name for events. */
  readonly name: string;
  /** Start feeding `sink` with every name (current ones first, then changes). */
  start(sink: RegistrySink): Promise<void>;
  /** Claim `name` for actor `id` of `node`: resolves with the owner afterwards (itself when won). */
  claim(name: string, node: string, id: number): Promise<{ node: string; id: number }>;
  /** Remove `name` if it still maps to actor `id` of `node`. */
  release(name: string, node: string, id: number): Promise<void>;
  /** Stop feeding (node shutdown). */
  stop(): Promise<void>;
}

/** What a {@link RegistryBackend} feeds: the cluster's names as it sees them. */
export interface RegistrySink {
  /**
   * `name` now maps to actor `id` of `node` (a local actor that held it is told `NAME_LOST`).
   * While this node does not see `node` up, the name is held back (`whereis` does not give it),
   * and shown once `node` is up.
   */
  set(name: string, node: string, id: number): void;
  /** `name` is free. */
  delete(name: string): void;
}

/**
 * The cluster-wide name registry, as one node sees it: a replicated map of name → ref.
 *
 * Consistency model (documented in the README): every node holds the whole map. A registration
 * is decided locally at once (`register` returns false only for a name this node already sees)
 * and flooded to the cluster. Two claims for one name are resolved the same way on every node —
 * the ref with the lower `(node id, actor id)` wins — and the loser's node tells its actor with
 * a `NAME_LOST` message. When links come up, nodes exchange their maps, so a healed partition
 * converges by the same rule. A name vanishes when its actor exits or its node is lost.
 */
export class Registry {
  #names = new Map<string, ActorRef<any, any>>();
  /** The names of each node's actors, so a lost node's names go in time proportional to them. */
  #byNode = new Map<string, Set<string>>();
  #host: RegistryHost;
  #backend: RegistryBackend | undefined;
  /** Names this node is claiming from the backend (their outcome tells the actor). */
  #claiming = new Map<string, number>();
  /**
   * Names from the backend whose node this node does not see up yet, by node: a name can arrive
   * (a KV watch) before its node's presence, and a call to a node that is not up fails
   * `NODE_DOWN` at once. They show once the node is up ({@link nodeUp}), so `whereis` only
   * gives refs to nodes this node sees, as with the gossiped registry.
   */
  #held = new Map<string, Map<string, ActorRef<any, any>>>();
  /** The node of each held name. */
  #heldNode = new Map<string, string>();

  #set(name: string, ref: ActorRef<any, any>): void {
    const cur = this.#names.get(name);
    if (cur) this.#unindex(name, cur.node);
    this.#names.set(name, ref);
    let set = this.#byNode.get(ref.node);
    if (!set) this.#byNode.set(ref.node, (set = new Set()));
    set.add(name);
  }

  #delete(name: string): void {
    const cur = this.#names.get(name);
    if (!cur) return;
    this.#names.delete(name);
    this.#unindex(name, cur.node);
  }

  #unindex(name: string, node: string): void {
    const set = this.#byNode.get(node);
    if (!set) return;
    set.delete(name);
    if (set.size === 0) this.#byNode.delete(node);
  }

  constructor(host: RegistryHost, backend?: RegistryBackend) {
    this.#host = host;
    this.#backend = backend;
  }

  /** Start the backend (if any); its changes update the cache. */
  startBackend(onError: (err: unknown) => void): void {
    const b = this.#backend;
    if (!b) return;
    b.start({
      set: (name, node, id) => {
        this.#unhold(name);
        const cur = this.#names.get(name);
        if (cur && cur.node === node && cur.id === id) return;
        if (node === this.#host.id) {
          // Every name of this node's actors is in its cache first (register), so an entry of
          // this node's id that the cache does not hold was left by a previous life of the node
          // (same id, restarted after a crash): remove it (the backend checks it is still that).
          if (!this.#claiming.has(name)) b.release(name, node, id).catch(() => {});
          return;
        }
        const ref = this.#host.refFor(node, id);
        this.#show(name, ref);
        if (cur && cur.node === this.#host.id && !this.#claiming.has(name))
          this.#host.lost(name, cur, ref);
      },
      delete: (name) => {
        this.#unhold(name);
        const cur = this.#names.get(name);
        if (cur?.node === this.#host.id) {
          // A name of a live actor here (an exit unregisters first) was deleted by others: one
          // of our claims is deciding it, or nodes that saw this node down removed its names
          // while it was alive. Claim it again (a claim by another node meanwhile wins).
          if (!this.#claiming.has(name)) this.#claim(b, name, cur);
          return;
        }
        this.#delete(name);
      },
    }).catch(onError);
  }

  /** `name` maps to `ref` (a backend said so): shown now if its node is up, else held until it is. */
  #show(name: string, ref: ActorRef<any, any>): void {
    if (ref.node === this.#host.id || this.#host.isReachable(ref.node)) {
      this.#set(name, ref);
      return;
    }
    this.#delete(name);
    let names = this.#held.get(ref.node);
    if (!names) this.#held.set(ref.node, (names = new Map()));
    names.set(name, ref);
    this.#heldNode.set(name, ref.node);
  }

  #unhold(name: string): void {
    const node = this.#heldNode.get(name);
    if (node === undefined) return;
    this.#heldNode.delete(name);
    const names = this.#held.get(node);
    names?.delete(name);
    if (names?.size === 0) this.#held.delete(node);
  }

  /** `node` is up: show the names held for it (see {@link RegistrySink}). */
  nodeUp(node: string): void {
    const names = this.#held.get(node);
    if (!names) return;
    this.#held.delete(node);
    for (const [name, ref] of names) {
      this.#heldNode.delete(name);
      if (!this.#names.has(name)) this.#set(name, ref);
    }
  }

  /** Stop the backend (if any). */
  async stopBackend(): Promise<void> {
    await this.#backend?.stop();
  }

  get(name: string): ActorRef<any, any> | undefined {
    return this.#names.get(name);
  }

  get size(): number {
    return this.#names.size;
  }

  entries(): IterableIterator<[string, ActorRef<any, any>]> {
    return this.#names.entries();
  }

  /** Claim `name` for `ref`; false if this node already sees the name taken. */
  register(name: string, ref: ActorRef<any, any>): boolean {
    const cur = this.#names.get(name);
    if (cur) return cur.equals(ref);
    this.#set(name, ref);
    if (this.#backend) this.#claim(this.#backend, name, ref);
    else this.#host.broadcast(addText(name, ref));
    return true;
  }

  #claim(b: RegistryBackend, name: string, ref: ActorRef<any, any>): void {
    this.#claiming.set(name, (this.#claiming.get(name) ?? 0) + 1);
    const done = (): void => {
      const n = (this.#claiming.get(name) ?? 1) - 1;
      if (n > 0) this.#claiming.set(name, n);
      else this.#claiming.delete(name);
    };
    b.claim(name, ref.node, ref.id)
      .then(async (owner) => {
        // Held by an actor of this node's id that is not in the cache: a previous life's entry.
        if (owner.node !== ref.node || owner.id === ref.id || !this.#names.get(name)?.equals(ref))
          return owner;
        await b.release(name, owner.node, owner.id);
        return b.claim(name, ref.node, ref.id);
      })
      .finally(done)
      .then(
        (owner) => {
          if (owner.node === ref.node && owner.id === ref.id) return;
          const winner = this.#host.refFor(owner.node, owner.id);
          if (this.#names.get(name)?.equals(ref)) this.#show(name, winner);
          this.#host.lost(name, ref, winner);
        },
        () => {
          // The backend is unreachable: the claim is not made; drop the optimistic entry.
          if (this.#names.get(name)?.equals(ref)) this.#delete(name);
        },
      );
  }

  /** Drop `name` if it maps to `ref` (or to anything, when `ref` is omitted). */
  unregister(name: string, ref?: ActorRef<any, any>): boolean {
    const cur = this.#names.get(name);
    if (!cur || (ref && !cur.equals(ref))) return false;
    this.#delete(name);
    if (this.#backend) this.#backend.release(name, cur.node, cur.id).catch(() => {});
    else this.#host.broadcast(delText(name, cur));
    return true;
  }

  /** Apply an add or delete that arrived on `link`. */
  apply(op: 'ga' | 'gd', name: string, node: string, id: number, link: unknown): void {
    if (this.#backend) return; // names come from the backend only
    const cur = this.#names.get(name);
    if (op === 'gd') {
      if (cur && cur.node === node && cur.id === id) {
        this.#delete(name);
        this.#host.broadcast(delText(name, cur), link);
      }
      return;
    }
    if (cur && cur.node === node && cur.id === id) return;
    const ref = this.#host.refFor(node, id);
    if (!cur) {
      this.#set(name, ref);
      this.#host.broadcast(addText(name, ref), link);
      return;
    }
    if (wins(ref, cur)) {
      this.#set(name, ref);
      this.#host.broadcast(addText(name, ref), link);
      if (cur.node === this.#host.id) this.#host.lost(name, cur, ref);
    } else {
      // We keep ours; make sure the sender learns the winner even if our add crossed theirs.
      this.#host.sendOn(link, addText(name, cur));
      if (ref.node === this.#host.id) this.#host.lost(name, ref, cur);
    }
  }

  /** Every entry, as envelopes to send to a peer whose link just came up. */
  snapshot(): string[] {
    const out: string[] = [];
    if (this.#backend) return out;
    for (const [name, ref] of this.#names) out.push(addText(name, ref));
    return out;
  }

  /** Forget every name of `node` (it was lost). Each node does this on its own detection. */
  dropNode(node: string): string[] {
    const names = this.#byNode.get(node);
    if (!names) return [];
    this.#byNode.delete(node);
    const dropped = [...names];
    for (const name of dropped) {
      const ref = this.#names.get(name);
      this.#names.delete(name);
      // Every node that sees `node` lost tries; the backend removes the name once.
      if (ref !== undefined) this.#backend?.release(name, ref.node, ref.id).catch(() => {});
    }
    return dropped;
  }
}

/** The deterministic conflict rule: lower node id wins, then lower actor id. */
export function wins(a: ActorRef<any, any>, b: ActorRef<any, any>): boolean {
  if (a.node !== b.node) return a.node < b.node;
  return a.id < b.id;
}

function addText(name: string, ref: ActorRef<any, any>): string {
  return writeRegistry('ga', name, ref.node, ref.id);
}

function delText(name: string, ref: ActorRef<any, any>): string {
  return writeRegistry('gd', name, ref.node, ref.id);
}

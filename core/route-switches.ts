import type { Clock } from './clock.ts';
import { isRouteFlush, writeRouteFlush } from './envelope-write.ts';
import type { DeadLetterReason } from './node-options.ts';

/** What a route switch needs of a link. */
export interface SwitchLink {
  readonly peer: string;
  enqueue(text: string): boolean;
}

/** What route switches need from their router. @internal */
export interface SwitchHost<L extends SwitchLink> {
  readonly id: string;
  readonly clock: Clock;
  /** How long a switch waits for its flush marker's answer (the heartbeat timeout). */
  readonly switchTimeout: number;
  route(node: string): L | undefined;
  /** `text` (held for `node`) in the form it takes on `link` (direct only on `node`'s own link). */
  rehome(text: string, node: string, link: L): string;
  /**
   * Envelopes to `node` may have been lost on their way: settle the session with `node`, tell
   * the peers routing to it (but `from`), and tell `node`.
   */
  routeLost(node: string, from: L | undefined): void;
  deadLetter(to: string, reason: DeadLetterReason): void;
}

/**
 * Route switches (a part of the Router): when the route to a node changes (a direct link
 * replaces a relayed path, a duplicate link is retired), new envelopes for it are held, a flush
 * marker (`rf`) goes down the old route, and the held envelopes leave on the new route when the
 * node answers (`ra`): nothing sent later overtakes what is still in flight on the old route.
 * @internal
 */
export class RouteSwitches<L extends SwitchLink> {
  readonly #host: SwitchHost<L>;
  readonly #switching = new Map<
    string,
    { held: string[]; timer: unknown; marker: number; old: L }
  >();
  #nextMarker = 1;

  constructor(host: SwitchHost<L>) {
    this.#host = host;
  }

  /** Whether any switch is in progress (the hot path checks this before {@link hold}). */
  get active(): boolean {
    return this.#switching.size !== 0;
  }

  /** The old link of the switch in progress for `node`, if any. */
  oldLink(node: string): L | undefined {
    return this.#switching.get(node)?.old;
  }

  /** Begin switching `node`'s route away from `oldLink`. */
  start(node: string, oldLink: L): void {
    if (this.#switching.has(node)) return;
    const host = this.#host;
    const marker = this.#nextMarker++;
    // If the answer never comes, the old route died with what was on it: see broken().
    const timer = host.clock.setTimeout(() => {
      if (this.#switching.get(node)?.marker === marker) this.broken(node, undefined);
    }, host.switchTimeout);
    this.#switching.set(node, { held: [], timer, marker, old: oldLink });
    oldLink.enqueue(writeRouteFlush('rf', node, host.id, marker));
  }

  /** Hold `text` for `node` if its route is switching; false if it may go now. */
  hold(node: string, text: string): boolean {
    const sw = this.#switching.get(node);
    if (sw === undefined) return false;
    sw.held.push(text);
    return true;
  }

  /** `node` answered flush marker `marker`: release what was held on the new route. */
  end(node: string, marker: number): void {
    const sw = this.#switching.get(node);
    if (sw === undefined || sw.marker !== marker) return;
    this.#switching.delete(node);
    this.#host.clock.clearTimeout(sw.timer);
    this.#release(node, sw.held);
  }

  /**
   * Envelopes to `node` may have been lost on their way, though `node` is still reachable: the
   * old route of a switch died before it was flushed, or a node we route through said so (`sl`,
   * from `from`). Our session with `node` is lost, and so is that of every node routing to `node`
   * through us (see {@link SwitchHost.routeLost}). Flush markers of others that we hold are not
   * released, so their switches fail too rather than confirm a route that lost envelopes.
   */
  broken(node: string, from: L | undefined): void {
    const sw = this.#switching.get(node);
    if (sw !== undefined) {
      this.#switching.delete(node);
      this.#host.clock.clearTimeout(sw.timer);
    }
    this.#host.routeLost(node, from);
    if (sw === undefined) return;
    this.#release(
      node,
      sw.held.filter((text) => !isRouteFlush(text)),
    );
  }

  /** `link` went down: the switches away from it can no longer be flushed. */
  linkDown(link: L): void {
    if (this.#switching.size === 0) return;
    for (const [n, sw] of [...this.#switching]) if (sw.old === link) this.broken(n, link);
  }

  /** Shutdown: drop the switches in progress and what they hold. */
  stop(): void {
    for (const sw of this.#switching.values()) this.#host.clock.clearTimeout(sw.timer);
    this.#switching.clear();
  }

  #release(node: string, held: string[]): void {
    const host = this.#host;
    const link = host.route(node);
    for (const text of held) {
      if (link === undefined || !link.enqueue(host.rehome(text, node, link)))
        host.deadLetter(node, link ? 'overflow' : 'unreachable');
    }
  }
}

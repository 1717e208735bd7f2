/** A listener for one event type. */
export type Listener<T> = (event: T) => void;

/**
 * A small typed event emitter with no host dependency. Listener errors are caught and reported
 * to `onListenerError` so one faulty listener never breaks the node that emits.
 */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  #listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};
  #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  /** Subscribe; returns a function that unsubscribes. */
  on<K extends keyof Events>(type: K, fn: Listener<Events[K]>): () => void {
    (this.#listeners[type] ??= []).push(fn);
    return () => this.off(type, fn);
  }

  /** Subscribe for the next event of `type` only. */
  once<K extends keyof Events>(type: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(type, (e) => {
      off();
      fn(e);
    });
    return off;
  }

  /** Resolve with the next event of `type` that satisfies `filter`. */
  next<K extends keyof Events>(
    type: K,
    filter: (e: Events[K]) => boolean = () => true,
  ): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(type, (e) => {
        if (!filter(e)) return;
        off();
        resolve(e);
      });
    });
  }

  off<K extends keyof Events>(type: K, fn: Listener<Events[K]>): void {
    const list = this.#listeners[type];
    if (!list) return;
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  }

  /** Whether anyone listens for `type` (lets hot paths skip building event objects). */
  has<K extends keyof Events>(type: K): boolean {
    const list = this.#listeners[type];
    return list !== undefined && list.length > 0;
  }

  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const list = this.#listeners[type];
    if (!list || list.length === 0) return;
    for (const fn of list.slice()) {
      try {
        fn(event);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}

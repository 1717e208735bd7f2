import type { Connection } from '../core/index.ts';

/** Frames held for a connection nobody has attached to yet; past this the peer is misbehaving. */
const MAX_EARLY_FRAMES = 10_000;

/**
 * What message-based adapters (MessagePort, WebSocket) share: `onclose` fires exactly once, and
 * nothing is lost in the gap between an adapter handing out a connection and core setting its
 * handlers (`node.attach` may run a few ticks later): frames that arrive in the gap are held and
 * delivered once `onframe` is set, a close in the gap is reported once `onclose` is set. Both are
 * delivered in a microtask, after whoever set the handler has finished setting up.
 */
export abstract class BaseConnection implements Connection {
  abstract readonly label: string;
  abstract send(frame: string): void;
  abstract close(): void;
  /** Set by core: called when `bufferedAmount` has fallen (see {@link Connection}). */
  ondrain: (() => void) | null = null;

  #onframe: ((frame: string) => void) | null = null;
  #onclose: ((reason?: string) => void) | null = null;
  #early: string[] = [];
  #unreported: string | undefined;
  #closed = false;

  /** Whether the connection has closed (locally or reported by the peer or host). */
  protected get closed(): boolean {
    return this.#closed;
  }

  get onframe(): ((frame: string) => void) | null {
    return this.#onframe;
  }

  set onframe(fn: ((frame: string) => void) | null) {
    this.#onframe = fn;
    if (!fn || this.#early.length === 0) return;
    queueMicrotask(() => {
      const early = this.#early;
      this.#early = [];
      for (const frame of early) {
        if (this.#closed || !this.#onframe) return;
        this.#onframe(frame);
      }
    });
  }

  get onclose(): ((reason?: string) => void) | null {
    return this.#onclose;
  }

  set onclose(fn: ((reason?: string) => void) | null) {
    this.#onclose = fn;
    const reason = this.#unreported;
    if (!fn || reason === undefined) return;
    this.#unreported = undefined;
    queueMicrotask(() => {
      if (this.#onclose !== fn) return;
      this.#onclose = null;
      fn(reason);
    });
  }

  /** Hand one received frame to core (or hold it). Returns false when too many are held. */
  protected deliver(frame: string): boolean {
    if (this.#closed) return true;
    if (this.#onframe && this.#early.length === 0) {
      this.#onframe(frame);
      return true;
    }
    this.#early.push(frame);
    return this.#early.length <= MAX_EARLY_FRAMES;
  }

  /**
   * Mark the connection closed, run the adapter's `cleanup`, and fire `onclose` (now, or once it
   * is set). Returns false (and does nothing) if it was already closed.
   */
  protected finish(reason: string, cleanup?: () => void): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#early = [];
    cleanup?.();
    const cb = this.#onclose;
    this.#onclose = null;
    if (cb) cb(reason);
    else this.#unreported = reason;
    return true;
  }
}

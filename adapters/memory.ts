import type { Connection, Node } from '../core/index.ts';

/** A connection end of {@link createMemoryPair}, with test hooks. */
export interface MemoryConnection extends Connection {
  /** The other end. */
  readonly peer: MemoryConnection;
  /** Frames this end has sent (when `record` was set). */
  readonly sent: string[];
}

/**
 * Two connected in-process connection ends. Frames are delivered asynchronously (one microtask
 * later), in order, exactly as strings, so two nodes joined this way go through the full
 * encode → frame → decode path a wire would.
 */
export function createMemoryPair(
  options: { label?: string; record?: boolean } = {},
): [MemoryConnection, MemoryConnection] {
  const a = new MemoryEnd(`${options.label ?? 'memory'}:a`, !!options.record);
  const b = new MemoryEnd(`${options.label ?? 'memory'}:b`, !!options.record);
  a.other = b;
  b.other = a;
  return [a, b];
}

class MemoryEnd implements MemoryConnection {
  onframe: ((frame: string) => void) | null = null;
  onclose: ((reason?: string) => void) | null = null;
  other!: MemoryEnd;
  readonly sent: string[] = [];
  #closed = false;
  #queue: string[] = [];
  #scheduled = false;

  constructor(
    readonly label: string,
    readonly record: boolean,
  ) {}

  get peer(): MemoryConnection {
    return this.other;
  }

  get bufferedAmount(): number {
    return 0;
  }

  send(frame: string): void {
    if (this.#closed) return;
    if (this.record) this.sent.push(frame);
    this.other.#receive(frame);
  }

  #receive(frame: string): void {
    this.#queue.push(frame);
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      const q = this.#queue;
      this.#queue = [];
      for (const f of q) {
        if (this.#closed) return;
        this.onframe?.(f);
      }
    });
  }

  close(): void {
    this.#shut('closed by this side');
    this.other.#shutSoon('closed by peer');
  }

  #shutSoon(reason: string): void {
    // Frames already in flight arrive before the close, as on a real socket.
    queueMicrotask(() => queueMicrotask(() => this.#shut(reason)));
  }

  #shut(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const cb = this.onclose;
    this.onclose = null;
    cb?.(reason);
  }
}

/**
 * Join two nodes with an in-memory link and wait until the handshake is done.
 * Returns the pair of connection ends (close one to cut the link).
 */
export async function connectMemory(
  a: Node,
  b: Node,
): Promise<[MemoryConnection, MemoryConnection]> {
  const pair = createMemoryPair({ label: `${a.id}<->${b.id}` });
  await Promise.all([a.attach(pair[0], true), b.attach(pair[1], false)]);
  return pair;
}

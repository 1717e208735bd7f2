import type { Connection } from './transport.ts';

/**
 * A connection being dialed, handed to a link at once so that the router can send to a member on
 * first use (lazy links): frames wait here until the transport's connection is open. A failed
 * dial closes it (the link fails its handshake); `error` keeps why.
 */
export class DialingConnection implements Connection {
  onframe: ((frame: string) => void) | null = null;
  onclose: ((reason?: string) => void) | null = null;
  ondrain: (() => void) | null = null;
  /** Why the dial failed, once it has. */
  error: unknown;
  #conn: Connection | undefined;
  #out: string[] = [];
  #closed = false;
  #limit: number | undefined;
  #limited = false;

  constructor(
    readonly label: string,
    dial: Promise<Connection>,
  ) {
    dial.then(
      (c) => {
        if (this.#closed) return c.close();
        this.#conn = c;
        c.onframe = (f) => this.onframe?.(f);
        c.onclose = (r) => this.#end(r);
        c.ondrain = () => this.ondrain?.();
        if (this.#limited) c.limitFrameBytes?.(this.#limit);
        const out = this.#out;
        this.#out = [];
        for (const f of out) c.send(f);
      },
      (err: unknown) => {
        this.error = err;
        this.#end(`dial failed: ${(err as Error)?.message ?? String(err)}`);
      },
    );
  }

  get bufferedAmount(): number {
    return this.#conn?.bufferedAmount ?? 0;
  }

  send(frame: string): void {
    if (this.#closed) return;
    if (this.#conn) this.#conn.send(frame);
    else this.#out.push(frame);
  }

  close(): void {
    if (this.#closed) return;
    if (this.#conn) return this.#conn.close();
    queueMicrotask(() => this.#end('closed by this side'));
    this.#closed = true;
  }

  limitFrameBytes(maxBytes: number | undefined): void {
    this.#limited = true;
    this.#limit = maxBytes;
    this.#conn?.limitFrameBytes?.(maxBytes);
  }

  #end(reason: string | undefined): void {
    this.#closed = true;
    this.#out = [];
    const fn = this.onclose;
    this.onclose = null;
    fn?.(reason);
  }
}

// Shared pieces of the adapter tests (tests/transport-*.test.ts, webrtc-node, the TCP and
// WebSocket pair fixtures): a listening transport whose accepted connections can be awaited one
// by one, a dialed pair of ends, the reason a connection closed with, what a promise rejected
// with, and per-test cleanup.
import { afterEach, expect } from 'vitest';
import { TroupeError, type Connection, type Transport } from '../../core/index.ts';

/** A listening transport: its first address, and each connection it accepts. */
export interface Listening<T extends Transport> {
  transport: T;
  address: string;
  /** The next accepted connection no earlier `next()` took, in the order they were accepted. */
  next(): Promise<Connection>;
  /** Accepted connections no `next()` has taken yet. */
  accepted: Connection[];
}

/** Start `transport` listening (it must be able to) and collect what it accepts. */
export async function listenOn<T extends Transport>(transport: T): Promise<Listening<T>> {
  const accepted: Connection[] = [];
  const waiting: ((c: Connection) => void)[] = [];
  const [address] = await transport.listen!((c) => {
    const w = waiting.shift();
    if (w) w(c);
    else accepted.push(c);
  });
  const next = (): Promise<Connection> =>
    accepted.length
      ? Promise.resolve(accepted.shift()!)
      : new Promise((resolve) => waiting.push(resolve));
  return { transport, address, next, accepted };
}

/** Two ends of one real connection, and the transports holding them. */
export interface DialedPair {
  /** The end `client` dialed. */
  a: Connection;
  /** The end `server` accepted. */
  b: Connection;
  /** `server`'s listen address. */
  address: string;
  server: Transport;
  client: Transport;
  /** Close both transports (and with them both ends). */
  cleanup: () => Promise<void>;
}

/** Listen on `server`, dial it from `client` (at its address followed by `suffix`, a query say). */
export async function dialPair(
  server: Transport,
  client: Transport,
  suffix = '',
): Promise<DialedPair> {
  const { address, next } = await listenOn(server);
  const a = await client.connect(address + suffix);
  const b = await next();
  return {
    a,
    b,
    address,
    server,
    client,
    cleanup: async () => {
      await Promise.all([client.close(), server.close()]);
    },
  };
}

/** The reason `conn` closes with (takes over its `onclose`). */
export function closedWith(conn: Connection): Promise<string | undefined> {
  return new Promise((resolve) => (conn.onclose = resolve));
}

/** What `p` rejected with; fails if it fulfilled. */
export function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** What `p` rejected with, checked to be a {@link TroupeError}; fails if it fulfilled. */
export async function troupeRejection(p: Promise<unknown>): Promise<TroupeError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(TroupeError);
  return err as TroupeError;
}

/**
 * Per-test cleanup for the calling test file: after each test, every function pushed on
 * `cleanups` runs, last pushed first; `track(x)` pushes `x.close()` and returns `x`.
 */
export function useCleanups(): {
  cleanups: (() => unknown)[];
  track<T extends { close(): unknown }>(x: T): T;
} {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  return {
    cleanups,
    track(x) {
      cleanups.push(() => x.close());
      return x;
    },
  };
}

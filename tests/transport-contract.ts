/**
 * The shared transport contract suite: what core relies on from every adapter's `Connection`
 * (see core/transport.ts). Run it once per adapter from a `tests/transport-<adapter>.test.ts`:
 *
 * ```ts
 * import { runTransportContract } from './transport-contract.ts';
 * runTransportContract('websocket', async () => {
 *   const [a, b] = await openTwoConnectedEnds();          // however the adapter makes a pair
 *   return { a, b, cleanup: () => closeServersAndTransports() };
 * });
 * ```
 *
 * `makePair` is called once per test and must resolve with two connected ends (`a` and `b`,
 * either may be the dialing side) on which nothing has been sent yet, plus an optional `cleanup`
 * run after the test (close servers, terminate workers). The suite sets `onframe`/`onclose`
 * itself. It checks:
 * - ordering: 10,000 frames each way (also both ways at once) arrive whole and in order;
 * - large frames: 1 MiB of ASCII and 1 MiB of multi-byte UTF-8 (2-, 3- and 4-byte characters)
 *   arrive intact, as do empty frames;
 * - close from either side (and from both at once) fires `onclose` exactly once on both ends,
 *   with frames sent before `close()` delivered first;
 * - `send` after close is a no-op that never throws, on both ends;
 * - calling `close()` twice still fires `onclose` once.
 *
 * Options: `largeFrameChars` lowers the large-frame size for an adapter with a smaller limit
 * (default 1 MiB); `frames` changes the ordering count (default 10,000).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../core/index.ts';

/** Two connected ends of one connection, as {@link runTransportContract} needs them. */
export interface ConnectionPair {
  a: Connection;
  b: Connection;
  /** Release what the pair holds (servers, transports, workers); runs after each test. */
  cleanup?: () => void | Promise<void>;
}

/** Tuning for adapters with other limits. */
export interface ContractOptions {
  /** Characters in each large frame. @default 1 MiB (1,048,576) */
  largeFrameChars?: number;
  /** Frames sent each way in the ordering tests. @default 10000 */
  frames?: number;
}

/** One end under observation: the frames it got and how often/why its `onclose` fired. */
interface Probe {
  frames: string[];
  closes: (string | undefined)[];
  /** Resolves when `frames.length >= n`. */
  received(n: number): Promise<void>;
  /** Resolves when `onclose` has fired. */
  closed: Promise<void>;
}

function probe(conn: Connection): Probe {
  const frames: string[] = [];
  const closes: (string | undefined)[] = [];
  let wanted = Infinity;
  let onEnough: () => void = () => {};
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  conn.onframe = (f) => {
    frames.push(f);
    if (frames.length >= wanted) onEnough();
  };
  conn.onclose = (reason) => {
    closes.push(reason);
    onClosed();
  };
  return {
    frames,
    closes,
    closed,
    received(n) {
      if (frames.length >= n) return Promise.resolve();
      wanted = n;
      return new Promise<void>((resolve) => (onEnough = resolve));
    },
  };
}

/** Let the event loop turn a few times so a late, duplicate `onclose` would have shown up. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

/** A string of `n` UTF-16 code units mixing 1-, 2-, 3- and 4-byte UTF-8 characters. */
function multiByteText(n: number): string {
  const unit = 'aé€😀漢ü字🎉'; // 10 code units
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n - 1) + 'Z';
}

/**
 * Define the contract tests for one adapter. Call at the top level of a test file.
 */
export function runTransportContract(
  name: string,
  makePair: () => Promise<ConnectionPair>,
  options: ContractOptions = {},
): void {
  const large = options.largeFrameChars ?? 1024 * 1024;
  const count = options.frames ?? 10_000;

  describe(`transport contract: ${name}`, () => {
    const cleanups: (() => void | Promise<void>)[] = [];
    afterEach(async () => {
      for (const fn of cleanups.splice(0)) await fn();
    });

    async function open(): Promise<{ a: Connection; b: Connection; pa: Probe; pb: Probe }> {
      const pair = await makePair();
      cleanups.push(() => {
        pair.a.close();
        pair.b.close();
      });
      if (pair.cleanup) cleanups.push(pair.cleanup);
      return { a: pair.a, b: pair.b, pa: probe(pair.a), pb: probe(pair.b) };
    }

    const numbered = (prefix: string) =>
      Array.from({ length: count }, (_, i) => `${prefix}${i}:${'x'.repeat(i % 97)}`);

    it('labels both ends', async () => {
      const { a, b } = await open();
      expect(typeof a.label).toBe('string');
      expect(a.label.length).toBeGreaterThan(0);
      expect(b.label.length).toBeGreaterThan(0);
      for (const end of [a, b])
        if (end.bufferedAmount !== undefined) expect(end.bufferedAmount).toBeGreaterThanOrEqual(0);
    });

    it(`delivers ${count} frames a → b whole and in order`, async () => {
      const { a, pb } = await open();
      const sent = numbered('a');
      for (const f of sent) a.send(f);
      await pb.received(count);
      expect(pb.frames.length).toBe(count);
      expect(pb.frames).toEqual(sent);
    });

    it(`delivers ${count} frames b → a whole and in order`, async () => {
      const { b, pa } = await open();
      const sent = numbered('b');
      for (const f of sent) b.send(f);
      await pa.received(count);
      expect(pa.frames).toEqual(sent);
    });

    it('keeps order both ways at once, with frames sent across many ticks', async () => {
      const { a, b, pa, pb } = await open();
      const fromA = numbered('a');
      const fromB = numbered('b');
      for (let i = 0; i < count; i += 500) {
        for (let j = i; j < Math.min(count, i + 500); j++) {
          a.send(fromA[j]);
          b.send(fromB[j]);
        }
        await new Promise((r) => setTimeout(r, 0));
      }
      await Promise.all([pa.received(count), pb.received(count)]);
      expect(pb.frames).toEqual(fromA);
      expect(pa.frames).toEqual(fromB);
    });

    it('delivers empty frames', async () => {
      const { a, pb } = await open();
      a.send('');
      a.send('between');
      a.send('');
      await pb.received(3);
      expect(pb.frames).toEqual(['', 'between', '']);
    });

    it(`delivers large frames intact (${large} chars of ASCII and of multi-byte UTF-8)`, async () => {
      const { a, b, pa, pb } = await open();
      const ascii = 'A'.repeat(large - 1) + 'Z';
      const utf8 = multiByteText(large);
      a.send(ascii);
      a.send('small');
      a.send(utf8);
      b.send(utf8);
      await Promise.all([pb.received(3), pa.received(1)]);
      // Compare as booleans: a diff of two 1 MiB strings would bury the report.
      expect(pb.frames.map((f) => f.length)).toEqual([large, 5, large]);
      expect(pb.frames[0] === ascii).toBe(true);
      expect(pb.frames[1]).toBe('small');
      expect(pb.frames[2] === utf8).toBe(true);
      expect(pa.frames[0] === utf8).toBe(true);
    });

    for (const side of ['a', 'b'] as const) {
      it(`close() from ${side} fires onclose exactly once on both ends, after the frames sent before it`, async () => {
        const pair = await open();
        const closer = side === 'a' ? pair.a : pair.b;
        const other = side === 'a' ? pair.pb : pair.pa;
        closer.send('last-1');
        closer.send('last-2');
        closer.close();
        await Promise.all([pair.pa.closed, pair.pb.closed]);
        await settle();
        expect(pair.pa.closes.length).toBe(1);
        expect(pair.pb.closes.length).toBe(1);
        expect(other.frames).toEqual(['last-1', 'last-2']);
      });
    }

    it('close() from both ends at once fires onclose exactly once on each', async () => {
      const { a, b, pa, pb } = await open();
      a.close();
      b.close();
      await Promise.all([pa.closed, pb.closed]);
      await settle();
      expect(pa.closes.length).toBe(1);
      expect(pb.closes.length).toBe(1);
    });

    it('calling close() twice (and again after onclose) still fires onclose once', async () => {
      const { a, b, pa, pb } = await open();
      a.close();
      a.close();
      await Promise.all([pa.closed, pb.closed]);
      a.close();
      b.close();
      await settle();
      expect(pa.closes.length).toBe(1);
      expect(pb.closes.length).toBe(1);
    });

    it('send() after close is a no-op on both ends: no throw, nothing delivered', async () => {
      const { a, b, pa, pb } = await open();
      a.send('before');
      await pb.received(1);
      a.close();
      expect(() => a.send('after close, closing side')).not.toThrow();
      await Promise.all([pa.closed, pb.closed]);
      expect(() => a.send('after onclose, closing side')).not.toThrow();
      expect(() => b.send('after onclose, other side')).not.toThrow();
      await settle();
      expect(pb.frames).toEqual(['before']);
      expect(pa.frames).toEqual([]);
      expect(pa.closes.length).toBe(1);
      expect(pb.closes.length).toBe(1);
    });
  });
}

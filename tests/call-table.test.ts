// CallTable: calls to this node's actors get their deadline when their window closes (one clock
// read per window, not per call); calls to other nodes get it when made (one read each, no
// window timer); both time out exactly on a manual clock, in the order they were made, and never
// before their timeout on real timers.
import { describe, expect, it } from 'vitest';
import { CallTable } from '../core/call-table.ts';
import { createManualClock, systemClock, TroupeError, type Clock } from '../core/index.ts';

/** A clock that counts its reads. */
function counting(inner: Clock): Clock & { reads: number } {
  const c = {
    reads: 0,
    now: () => {
      c.reads++;
      return inner.now();
    },
    setTimeout: (fn: () => void, ms: number) => inner.setTimeout(fn, ms),
    clearTimeout: (h: unknown) => inner.clearTimeout(h),
  };
  return c;
}

const state = (p: Promise<unknown>) => {
  const s = { settled: false, value: undefined as unknown, error: undefined as unknown };
  p.then(
    (v) => ((s.settled = true), (s.value = v)),
    (e) => ((s.settled = true), (s.error = e)),
  );
  return s;
};
const flush = () => new Promise((r) => setImmediate(r));
const code = (e: unknown) => (e as TroupeError).code;

/** The same behaviour whether calls go through the window (local) or are queued when made. */
describe.each([
  { path: 'window (calls to this node)', self: undefined },
  { path: 'queued when made (calls to other nodes)', self: 'me' },
])('CallTable, $path', ({ self }) => {
  const make = (clock: Clock) => new CallTable(clock, self);

  it('times calls out exactly on a manual clock, each from the time it was made', async () => {
    const clock = createManualClock();
    const t = make(clock);
    const a = state(t.open('n', 300, () => undefined));
    clock.advance(100);
    const b = state(t.open('n', 300, () => undefined));
    const c = state(t.open('n', 50, () => undefined));
    clock.advance(49); // 149
    await flush();
    expect(c.settled).toBe(false);
    clock.advance(1); // 150 = 100 + 50
    await flush();
    expect(code(c.error)).toBe('TIMEOUT');
    clock.advance(149); // 299
    await flush();
    expect(a.settled).toBe(false);
    clock.advance(1); // 300
    await flush();
    expect(code(a.error)).toBe('TIMEOUT');
    expect(b.settled).toBe(false);
    clock.advance(99); // 399
    await flush();
    expect(b.settled).toBe(false);
    clock.advance(1); // 400
    await flush();
    expect(code(b.error)).toBe('TIMEOUT');
    expect(t.size).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('settles by id beyond its slot count, in any order, with overflow when a slot is held', async () => {
    const clock = createManualClock();
    const t = make(clock);
    const ids: number[] = [];
    // A slow call holds its slot while 10,000 more are opened (more than the 4096 slots).
    const slow = state(t.open('n', 60_000, (id) => void ids.push(id)));
    const ps = Array.from({ length: 10_000 }, (_, i) =>
      t.open('n', 60_000, (id) => void ids.push(id)).then((v) => expect(v).toBe(i)),
    );
    expect(t.size).toBe(10_001);
    for (let i = 10_000; i >= 1; i -= 2) t.settle(ids[i], true, i - 1);
    for (let i = 1; i <= 10_000; i += 2) t.settle(ids[i], true, i - 1);
    t.settle(ids[5], true, 'again'); // settled already: ignored
    await Promise.all(ps);
    expect(t.size).toBe(1);
    expect(t.has(ids[0])).toBe(true);
    t.dropNode('n', 'test');
    await flush();
    expect(code(slow.error)).toBe('NODE_DOWN');
    expect(t.size).toBe(0);
  });

  it('start() returning an error rejects at once; rejectAll stops every timer', async () => {
    const clock = createManualClock();
    const t = make(clock);
    const failed = state(t.open('n', 100, () => new TroupeError('NODE_DOWN', 'gone')));
    await flush();
    expect(code(failed.error)).toBe('NODE_DOWN');
    const a = state(t.open('n', 100, () => undefined));
    clock.advance(0);
    const b = state(t.open('m', 200, () => undefined));
    t.rejectAll(() => new TroupeError('SHUTDOWN', 'bye'));
    await flush();
    expect([code(a.error), code(b.error)]).toEqual(['SHUTDOWN', 'SHUTDOWN']);
    expect(clock.pending()).toBe(0);
  });

  it('on real timers a call never times out before its timeout', async () => {
    const t = make(systemClock);
    const t0 = performance.now();
    const err = await t.open('n', 40, () => undefined).catch((e) => e);
    const waited = performance.now() - t0;
    expect(code(err)).toBe('TIMEOUT');
    expect(waited).toBeGreaterThanOrEqual(39); // timers may round by under a millisecond
    expect(waited).toBeLessThan(5000); // generous: the machine is shared
  });
});

describe('CallTable: clock reads and timers', () => {
  it('reads the clock once per window, not per call, and answered calls arm no timeout', async () => {
    const manual = createManualClock();
    const clock = counting(manual);
    const t = new CallTable(clock);
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      let id = 0;
      ps.push(t.open('n', 5000, (callId) => void (id = callId)));
      if (i % 2 === 0) t.settle(id, true, i);
    }
    expect(clock.reads).toBe(0);
    expect(manual.pending()).toBe(1); // the window timer
    manual.advance(0); // the window closes: one read, one timer for the 500 calls still waiting
    expect(clock.reads).toBe(1);
    expect(manual.pending()).toBe(1);
    expect(t.size).toBe(500);
    manual.advance(5000);
    const results = await Promise.allSettled(ps);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(500);
    expect(
      results.filter((r) => r.status === 'rejected' && code(r.reason) === 'TIMEOUT'),
    ).toHaveLength(500);
    expect(t.size).toBe(0);
    expect(manual.pending()).toBe(0);
  });

  it('calls to other nodes: one clock read each, no window timer; mixed with local calls of the same timeout, all expire in the order made, exactly on time', async () => {
    const manual = createManualClock();
    const clock = counting(manual);
    const t = new CallTable(clock, 'me');
    const ps: Promise<unknown>[] = [];
    for (let i = 0; i < 1000; i++) {
      let id = 0;
      ps.push(t.open('other', 5000, (callId) => void (id = callId)));
      if (i % 2 === 0) t.settle(id, true, i);
    }
    expect(clock.reads).toBe(1000);
    expect(manual.pending()).toBe(1); // the timer of the 5000 ms queue, no window timer
    expect(t.size).toBe(500);
    // Local calls (to 'me') still use the window; remote ones made later queue behind them.
    manual.advance(1000);
    const local = state(t.open('me', 5000, () => undefined));
    expect(manual.pending()).toBe(2); // + the window timer
    manual.advance(500); // 1500: the window closed at 1000 (one read), the local call queued
    expect(clock.reads).toBe(1001);
    const remote = state(t.open('other', 5000, () => undefined));
    expect(clock.reads).toBe(1002);
    manual.advance(3499); // 4999
    await flush();
    expect(t.size).toBe(502);
    manual.advance(1); // 5000: the first 500 remote calls
    const results = await Promise.allSettled(ps);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(500);
    expect(
      results.filter((r) => r.status === 'rejected' && code(r.reason) === 'TIMEOUT'),
    ).toHaveLength(500);
    manual.advance(999); // 5999
    await flush();
    expect(local.settled).toBe(false);
    manual.advance(1); // 6000 = 1000 + 5000
    await flush();
    expect(code(local.error)).toBe('TIMEOUT');
    expect(remote.settled).toBe(false);
    manual.advance(499); // 6499
    await flush();
    expect(remote.settled).toBe(false);
    manual.advance(1); // 6500 = 1500 + 5000
    await flush();
    expect(code(remote.error)).toBe('TIMEOUT');
    expect(t.size).toBe(0);
    expect(manual.pending()).toBe(0);
  });
});

/**
 * In-process cases: one-way sends to a typed actor, calls, spawning, idle actor size.
 */
import { behaviour, createNode, type ActorRef } from '../core/index.ts';
import { gc, hasGc, interleaved, now, tick, type BenchCase, type Result } from './harness.ts';
import { Msg, Sink, makeMessages } from './messages.ts';

const ONEWAY_N = 1_000_000;
/** Messages sent per event-loop tick by the producer (same chunks for the baseline). */
const CHUNK = 10_000;
const CALL_N = 100_000;
const CALLERS = 100;
const SPAWN_N = 1_000_000;
const IDLE_N = 200_000;

/** A typed actor that hands every message to `sink`. */
function counter(sink: Sink) {
  return behaviour({
    schema: Msg,
    handle(m) {
      sink.handle(m);
    },
  });
}

const oneway: BenchCase = {
  name: 'local.oneway',
  async run(): Promise<Result[]> {
    const msgs = makeMessages(ONEWAY_N);
    const node = createNode({ name: 'bench-local' });
    const sink = new Sink();
    const ref = node.spawn(counter(sink));

    // troupe: a producer sends CHUNK messages per tick; the actor drains them.
    const troupe = async (chunk: number) => {
      const done = sink.arm(ONEWAY_N);
      const t0 = now();
      for (let i = 0; i < ONEWAY_N; ) {
        const end = Math.min(ONEWAY_N, i + chunk);
        for (; i < end; i++) ref.send(msgs[i]);
        if (i < ONEWAY_N) await tick();
      }
      await done;
      return ONEWAY_N / ((now() - t0) / 1000);
    };
    // baseline: the same messages, the same chunks, through an index-reset array queue drained
    // by a loop that calls the same handler per message.
    const raw = async (chunk: number) => {
      const q: Msg[] = [];
      let head = 0;
      const done = sink.arm(ONEWAY_N);
      const t0 = now();
      for (let i = 0; i < ONEWAY_N; ) {
        const end = Math.min(ONEWAY_N, i + chunk);
        for (; i < end; i++) q.push(msgs[i]);
        while (head < q.length) {
          const m = q[head];
          q[head++] = undefined as unknown as Msg;
          sink.handle(m);
        }
        q.length = 0;
        head = 0;
        if (i < ONEWAY_N) await tick();
      }
      await done;
      return ONEWAY_N / ((now() - t0) / 1000);
    };
    const r = await interleaved(
      { troupe: () => troupe(CHUNK), raw: () => raw(CHUNK) },
      { warmup: 2, reps: 5 },
    );
    // The same, all ONEWAY_N sent in one synchronous burst (the scheduler's turn budget applies).
    const burst = await interleaved(
      { troupe: () => troupe(ONEWAY_N), raw: () => raw(ONEWAY_N) },
      { warmup: 1, reps: 3 },
    );
    await node.shutdown();
    return [
      {
        key: 'local.oneway',
        unit: 'msgs/s',
        value: r.troupe,
        baseline: r.raw,
        baselineLabel: 'array-queue drain loop',
        target: { kind: 'min-ratio', ratio: 0.4 },
        note: `local.oneway: ${ONEWAY_N} msgs to a behaviour with a zod schema, ${CHUNK} per tick; local.oneway_burst: all ${ONEWAY_N} in one synchronous loop. Baseline: the same messages through an index-reset array queue to the same handler, no validation.`,
      },
      {
        key: 'local.oneway_burst',
        unit: 'msgs/s',
        value: burst.troupe,
        baseline: burst.raw,
        baselineLabel: 'array-queue drain loop',
      },
    ];
  },
};

const call: BenchCase = {
  name: 'local.call',
  async run(): Promise<Result[]> {
    const msgs = makeMessages(CALL_N);
    const node = createNode({ name: 'bench-call' });
    const echo: ActorRef<Msg, number> = node.spawn(
      behaviour({
        schema: Msg,
        handle(m, _s, ctx) {
          ctx.reply(m.n);
        },
      }),
    );

    // Raw promise round trip: the request goes into an array queue drained in one microtask,
    // which resolves each caller's promise with the handler's answer: the same moving parts as
    // an actor's mailbox, without validation, envelopes, timers or the call table.
    const q: { m: Msg; resolve: (v: number) => void }[] = [];
    let scheduled = false;
    const drain = () => {
      scheduled = false;
      for (let i = 0; i < q.length; i++) {
        const { m, resolve } = q[i];
        resolve(m.n);
      }
      q.length = 0;
    };
    const rawCall = (m: Msg) =>
      new Promise<number>((resolve) => {
        q.push({ m, resolve });
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(drain);
        }
      });

    let check = 0;
    const sequential = async (f: (m: Msg) => Promise<number>) => {
      const t0 = now();
      for (let i = 0; i < CALL_N; i++) check += await f(msgs[i]);
      return CALL_N / ((now() - t0) / 1000);
    };
    const concurrent = async (f: (m: Msg) => Promise<number>) => {
      const per = CALL_N / CALLERS;
      const t0 = now();
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, c) => {
          for (let i = c * per, end = i + per; i < end; i++) check += await f(msgs[i]);
        }),
      );
      return CALL_N / ((now() - t0) / 1000);
    };
    const troupeCall = (m: Msg) => echo.call(m);
    const seq = await interleaved(
      { troupe: () => sequential(troupeCall), raw: () => sequential(rawCall) },
      { warmup: 1, reps: 5 },
    );
    const conc = await interleaved(
      { troupe: () => concurrent(troupeCall), raw: () => concurrent(rawCall) },
      { warmup: 1, reps: 5 },
    );
    await node.shutdown();
    if (check === 0.5) console.log(check); // keep `check` alive
    return [
      {
        key: 'local.call',
        unit: 'calls/s',
        value: seq.troupe,
        baseline: seq.raw,
        baselineLabel: 'raw promise round trip',
        target: { kind: 'min-ratio', ratio: 0.4 },
        note: `local.call: ${CALL_N} sequential awaited calls to a typed behaviour; local.call_concurrent: ${CALLERS} callers. Baseline: a promise resolved from an array queue drained in a microtask (no validation, envelope, timeout or call table).`,
      },
      {
        key: 'local.call_concurrent',
        unit: 'calls/s',
        value: conc.troupe,
        baseline: conc.raw,
        baselineLabel: 'raw promise round trip',
      },
    ];
  },
};

/** The bare actor of the baselines: an id, a mailbox array and a handler. */
interface BareActor {
  id: number;
  mailbox: unknown[];
  handler: (m: unknown) => void;
}

const spawn: BenchCase = {
  name: 'spawn',
  async run(): Promise<Result[]> {
    const idle = behaviour<unknown, undefined>({ handle() {} });
    const handler = (_m: unknown) => {};

    const troupe = (n = SPAWN_N) => {
      const node = createNode({ name: 'bench-spawn' });
      const t0 = now();
      for (let i = 0; i < n; i++) node.spawn(idle);
      return (now() - t0) / 1000;
    };
    const raw = (n = SPAWN_N) => {
      const map = new Map<number, BareActor>();
      const t0 = now();
      for (let i = 1; i <= n; i++) map.set(i, { id: i, mailbox: [], handler });
      return (now() - t0) / 1000;
    };
    // Warm up on a tenth of the count: a full extra million would only add GC time.
    troupe(SPAWN_N / 10);
    raw(SPAWN_N / 10);
    const r = await interleaved(
      { troupe: () => troupe(), raw: () => raw() },
      { warmup: 0, reps: 3 },
    );

    // Heap bytes per idle actor: heapUsed after a full GC, before and after N of them.
    let bytes: number | null = null;
    let bareBytes: number | null = null;
    if (hasGc()) {
      let keep: unknown;
      const perActor = async (make: () => unknown) => {
        keep = undefined;
        gc();
        await tick();
        gc();
        const h0 = process.memoryUsage().heapUsed;
        keep = make();
        gc();
        await tick();
        gc();
        const h1 = process.memoryUsage().heapUsed;
        keep = undefined;
        return (h1 - h0) / IDLE_N;
      };
      const m = await interleaved(
        {
          troupe: () =>
            perActor(() => {
              const node = createNode({ name: 'bench-idle' });
              for (let i = 0; i < IDLE_N; i++) node.spawn(idle);
              return node;
            }),
          raw: () =>
            perActor(() => {
              const map = new Map<number, BareActor>();
              for (let i = 1; i <= IDLE_N; i++) map.set(i, { id: i, mailbox: [], handler });
              return map;
            }),
        },
        { warmup: 0, reps: 3 },
      );
      bytes = m.troupe;
      bareBytes = m.raw;
    }
    return [
      {
        key: 'spawn.seconds_1m',
        unit: 's',
        value: r.troupe,
        baseline: r.raw,
        baselineLabel: 'bare objects into a Map',
        target: { kind: 'max', limit: 1 },
        note: `spawn.seconds_1m: ${SPAWN_N} idle behaviours on one node. Baseline: ${SPAWN_N} bare { id, mailbox: [], handler } objects set in a Map by id.`,
      },
      {
        key: 'actor.idle_bytes',
        unit: 'B',
        value: bytes,
        baseline: bareBytes,
        baselineLabel: 'bare object in a Map',
        target: { kind: 'max', limit: 512 },
        note:
          bytes === null
            ? 'actor.idle_bytes: n/a, run node with --expose-gc'
            : `actor.idle_bytes: heapUsed delta after GC over ${IDLE_N} idle behaviours (including the node's Map entry), vs the same number of bare objects in a Map.`,
      },
    ];
  },
};

export const cases: BenchCase[] = [oneway, call, spawn];

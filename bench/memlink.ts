/**
 * Two nodes in one process joined by the memory adapter: the full encode → frame → decode path.
 */
import { behaviour, createNode } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { interleaved, now, tick, type BenchCase, type Result } from './harness.ts';
import { Msg, Sink, makeMessages } from './messages.ts';

const N = 200_000;
/** Messages sent per event-loop tick (so one link frame carries up to CHUNK envelopes). */
const CHUNK = 1_000;

const oneway: BenchCase = {
  name: 'memlink.oneway',
  async run(): Promise<Result[]> {
    const msgs = makeMessages(N);
    const a = createNode({ name: 'bench-a' });
    const b = createNode({ name: 'bench-b' });
    await connectMemory(a, b);
    const sink = new Sink();
    const onB = b.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
    const ref = a.ref<Msg>(onB.node, onB.id);

    const troupe = async () => {
      const done = sink.arm(N);
      const t0 = now();
      for (let i = 0; i < N; ) {
        const end = Math.min(N, i + CHUNK);
        for (; i < end; i++) ref.send(msgs[i]);
        await tick();
      }
      await done;
      return N / ((now() - t0) / 1000);
    };
    // baseline: JSON.stringify + JSON.parse of each message, handed to the same handler, in the
    // same chunks per tick.
    const raw = async () => {
      const done = sink.arm(N);
      const t0 = now();
      for (let i = 0; i < N; ) {
        const end = Math.min(N, i + CHUNK);
        for (; i < end; i++) sink.handle(JSON.parse(JSON.stringify(msgs[i])));
        await tick();
      }
      await done;
      return N / ((now() - t0) / 1000);
    };
    // batched baseline: a tick's messages as one JSON array (stringify + parse once per tick),
    // each handed to the same handler: what troupe's one-frame-per-tick batching is judged against.
    const batched = async () => {
      const done = sink.arm(N);
      const t0 = now();
      for (let i = 0; i < N; ) {
        const end = Math.min(N, i + CHUNK);
        const arr = JSON.parse(JSON.stringify(msgs.slice(i, end))) as Msg[];
        for (let j = 0; j < arr.length; j++) sink.handle(arr[j]);
        i = end;
        await tick();
      }
      await done;
      return N / ((now() - t0) / 1000);
    };
    const r = await interleaved({ troupe, raw, batched }, { warmup: 2, reps: 5 });
    await Promise.all([a.shutdown(), b.shutdown()]);
    return [
      {
        key: 'memlink.oneway',
        unit: 'msgs/s',
        value: r.troupe,
        baseline: r.batched,
        baselineLabel: `JSON of ${CHUNK} msgs/tick`,
        target: { kind: 'min-ratio', ratio: 0.5 },
        note: `memlink.oneway: ${N} msgs from node a to a typed behaviour on node b over connectMemory, ${CHUNK} per tick. Baseline: each tick's ${CHUNK} msgs as one JSON array, stringified and parsed, then handled (memlink.oneway_per_msg: JSON.stringify+parse per message). Baselines do not validate.`,
      },
      {
        key: 'memlink.oneway_per_msg',
        unit: 'msgs/s',
        value: r.troupe,
        baseline: r.raw,
        baselineLabel: 'JSON.stringify+parse per msg',
      },
    ];
  },
};

export const cases: BenchCase[] = [oneway];

/**
 * Node worker_threads: a troupe worker node linked over its MessagePort (troupe/worker) against
 * raw postMessage to the same kind of thread, in the same run. One-way is judged against a
 * batched raw baseline (a tick's messages in one post, as troupe batches them), and shown beside
 * the per-message one.
 */
import { Worker } from 'node:worker_threads';
import { createNode, type ActorRef } from '../core/index.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import {
  interleavedSamples,
  median,
  now,
  summary,
  tick,
  type BenchCase,
  type Result,
} from './harness.ts';
import { makeMessages, type Msg } from './messages.ts';

const RTT_N = 5_000;
const RTT_REPS = 5;
const ONEWAY_N = 200_000;
const CHUNK = 1_000;
const boot = new URL('../tests/fixtures/tsx-worker.mjs', import.meta.url);
const peer = new URL('./worker-peer.ts', import.meta.url).href;

/** A worker_threads thread running bench/worker-peer.ts in `mode`. */
export const startThread = (mode: 'raw' | 'troupe' | 'comlink'): Worker =>
  new Worker(boot, { workerData: { entry: peer, mode } });

/** `n` sequential round trips through `one`, in µs (unsorted). */
export async function roundTrips(
  n: number,
  msgs: Msg[],
  one: (m: Msg) => Promise<unknown>,
): Promise<Float64Array> {
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await one(msgs[i % msgs.length]);
    times[i] = (now() - t0) * 1000;
  }
  return times;
}

/** A main-thread node linked to a troupe worker node; resolves once its actors are registered. */
export async function troupeWorker(name: string): Promise<{
  node: ReturnType<typeof createNode>;
  thread: Worker;
  echo: ActorRef<Msg, Msg>;
  sink: ActorRef<Msg>;
  ctl: ActorRef<{ arm: number; to: ActorRef<string> }, boolean>;
}> {
  // A longer handshake than the default 5 s: a loaded machine may take that long to start a thread.
  const node = createNode({ name, handshakeTimeout: 30_000 });
  const thread = startThread('troupe');
  await spawnWorkerNode(node, thread);
  for (
    let i = 0;
    i < 400 && !(node.whereis('echo') && node.whereis('sink') && node.whereis('sink-ctl'));
    i++
  )
    await new Promise((r) => setTimeout(r, 5));
  const echo = node.whereis('echo') as ActorRef<Msg, Msg> | undefined;
  const sink = node.whereis('sink') as ActorRef<Msg> | undefined;
  const ctl = node.whereis('sink-ctl') as
    | ActorRef<{ arm: number; to: ActorRef<string> }, boolean>
    | undefined;
  if (!echo || !sink || !ctl) throw new Error('worker node did not register its actors');
  return { node, thread, echo, sink, ctl };
}

const cases: BenchCase[] = [
  {
    name: 'worker',
    async run(): Promise<Result[]> {
      const msgs = makeMessages(ONEWAY_N);
      const raw = startThread('raw');
      const rawNext = () => new Promise<unknown>((r) => raw.once('message', r));
      const t = await troupeWorker('bench-main');
      const { node, echo, sink, ctl } = t;

      // Round trips: per round p50 and p99 of RTT_N sequential ones; then the median of the rounds.
      const rttP99 = { troupe: [] as number[], raw: [] as number[] };
      const rtt = await interleavedSamples(
        {
          troupe: async () => {
            const s = summary(await roundTrips(RTT_N, msgs, (m) => echo.call(m)));
            rttP99.troupe.push(s.p99);
            return s.p50;
          },
          raw: async () => {
            raw.postMessage({ echo: true });
            const s = summary(
              await roundTrips(RTT_N, msgs, (m) => {
                const p = rawNext();
                raw.postMessage(m);
                return p;
              }),
            );
            rttP99.raw.push(s.p99);
            return s.p50;
          },
        },
        { warmup: 1, reps: RTT_REPS },
      );

      let done: () => void = () => {};
      const notifier = node.spawn(async (self) => {
        for (;;) {
          await self.receive();
          done();
        }
      });
      const rawOneway = async (post: (from: number, to: number) => void) => {
        raw.postMessage({ arm: ONEWAY_N });
        const finished = rawNext();
        const t0 = now();
        for (let i = 0; i < ONEWAY_N; i += CHUNK) {
          post(i, Math.min(ONEWAY_N, i + CHUNK));
          await tick();
        }
        await finished;
        return ONEWAY_N / ((now() - t0) / 1000);
      };
      const oneway = await interleavedSamples(
        {
          troupe: async () => {
            const finished = new Promise<void>((r) => (done = r));
            await ctl.call({ arm: ONEWAY_N, to: notifier });
            const t0 = now();
            for (let i = 0; i < ONEWAY_N; ) {
              const end = Math.min(ONEWAY_N, i + CHUNK);
              for (; i < end; i++) sink.send(msgs[i]);
              await tick();
            }
            await finished;
            return ONEWAY_N / ((now() - t0) / 1000);
          },
          // One postMessage per message (structured clone each).
          perMessage: () =>
            rawOneway((a, b) => {
              for (let i = a; i < b; i++) raw.postMessage(msgs[i]);
            }),
          // A tick's messages as one JSON string in one postMessage; the worker parses it.
          batched: () => rawOneway((a, b) => raw.postMessage(JSON.stringify(msgs.slice(a, b)))),
        },
        { warmup: 1, reps: 3 },
      );
      await node.shutdown();
      await Promise.all([raw.terminate(), t.thread.terminate()]);
      return [
        {
          key: 'worker.rtt_us',
          unit: 'µs',
          value: median(rtt.troupe),
          baseline: median(rtt.raw),
          baselineLabel: 'raw postMessage echo',
          target: { kind: 'max-ratio', ratio: 1.5 },
          note: `worker.*: Node worker_threads. RTT: ${RTT_REPS} interleaved rounds of ${RTT_N} sequential round trips, p50 and p99 per round, median of rounds (troupe: call to a typed echo behaviour in a worker node; raw: postMessage echo, no validation). worker.oneway: ${ONEWAY_N} msgs, ${CHUNK} per tick, to a typed sink; baseline: the tick's ${CHUNK} msgs as one JSON string in one postMessage, parsed in the worker (worker.oneway_per_msg: one postMessage per message). Raw sides do not validate.`,
        },
        {
          key: 'worker.rtt_p99_us',
          unit: 'µs',
          value: median(rttP99.troupe),
          baseline: median(rttP99.raw),
          baselineLabel: 'raw postMessage echo',
        },
        {
          key: 'worker.oneway',
          unit: 'msgs/s',
          value: median(oneway.troupe),
          baseline: median(oneway.batched),
          baselineLabel: `raw, ${CHUNK} msgs/post as JSON`,
          target: { kind: 'min-ratio', ratio: 0.5 },
        },
        {
          key: 'worker.oneway_per_msg',
          unit: 'msgs/s',
          value: median(oneway.troupe),
          baseline: median(oneway.perMessage),
          baselineLabel: 'raw, 1 postMessage/msg',
        },
      ];
    },
  },
];

export { cases };

/**
 * Node worker_threads: a troupe worker node linked over its MessagePort (troupe/worker) against
 * raw per-message postMessage to the same kind of thread, in the same run.
 */
import { Worker } from 'node:worker_threads';
import { createNode, type ActorRef } from '../core/index.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { interleaved, now, percentile, tick, type BenchCase, type Result } from './harness.ts';
import { makeMessages, type Msg } from './messages.ts';

const RTT_N = 5_000;
const ONEWAY_N = 200_000;
const CHUNK = 1_000;
const boot = new URL('../tests/fixtures/tsx-worker.mjs', import.meta.url);
const peer = new URL('./worker-peer.ts', import.meta.url).href;

const startThread = (mode: 'raw' | 'troupe') => new Worker(boot, { workerData: { entry: peer, mode } });

const cases: BenchCase[] = [
  {
    name: 'worker',
    async run(): Promise<Result[]> {
      const msgs = makeMessages(ONEWAY_N);
      // raw side
      const raw = startThread('raw');
      const rawNext = () => new Promise<unknown>((r) => raw.once('message', r));
      // troupe side
      const node = createNode({ name: 'bench-main' });
      const troupeThread = startThread('troupe');
      await spawnWorkerNode(node, troupeThread);
      for (let i = 0; i < 400 && !(node.whereis('echo') && node.whereis('sink')); i++) await new Promise((r) => setTimeout(r, 5));
      const echo = node.whereis<Msg>('echo') as ActorRef<Msg>;
      const sink = node.whereis<unknown>('sink')!;
      if (!echo || !sink) throw new Error('worker node did not register its actors');

      const rttRound = async (one: (m: Msg) => Promise<unknown>) => {
        const times = new Float64Array(RTT_N);
        for (let i = 0; i < RTT_N; i++) {
          const t0 = now();
          await one(msgs[i]);
          times[i] = (now() - t0) * 1000;
        }
        times.sort();
        return percentile(times, 0.5);
      };
      const rtt = await interleaved(
        {
          troupe: () => rttRound((m) => echo.call(m)),
          raw: () => {
            raw.postMessage({ echo: true });
            return rttRound((m) => {
              const p = rawNext();
              raw.postMessage(m);
              return p;
            });
          },
        },
        { warmup: 1, reps: 5 },
      );

      let done: () => void = () => {};
      const notifier = node.spawn(async (self) => {
        for (;;) {
          await self.receive();
          done();
        }
      });
      const oneway = await interleaved(
        {
          troupe: async () => {
            const finished = new Promise<void>((r) => (done = r));
            sink.send({ arm: ONEWAY_N, to: notifier });
            const t0 = now();
            for (let i = 0; i < ONEWAY_N; ) {
              const end = Math.min(ONEWAY_N, i + CHUNK);
              for (; i < end; i++) sink.send(msgs[i]);
              await tick();
            }
            await finished;
            return ONEWAY_N / ((now() - t0) / 1000);
          },
          raw: async () => {
            raw.postMessage({ arm: ONEWAY_N });
            const finished = rawNext();
            const t0 = now();
            for (let i = 0; i < ONEWAY_N; ) {
              const end = Math.min(ONEWAY_N, i + CHUNK);
              for (; i < end; i++) raw.postMessage(msgs[i]);
              await tick();
            }
            await finished;
            return ONEWAY_N / ((now() - t0) / 1000);
          },
        },
        { warmup: 1, reps: 3 },
      );
      await node.shutdown();
      await Promise.all([raw.terminate(), troupeThread.terminate()]);
      return [
        {
          key: 'worker.rtt_us',
          unit: 'µs',
          value: rtt.troupe,
          baseline: rtt.raw,
          baselineLabel: 'raw postMessage echo',
          target: { kind: 'max-ratio', ratio: 1.5 },
          note: `worker.*: Node worker_threads. RTT: ${RTT_N} sequential round trips per round, p50 (troupe: call to a typed echo behaviour in a worker node; raw: postMessage echo). worker.oneway: ${ONEWAY_N} msgs, ${CHUNK} per tick (troupe: send to a sink actor; raw: one postMessage per message).`,
        },
        {
          key: 'worker.oneway',
          unit: 'msgs/s',
          value: oneway.troupe,
          baseline: oneway.raw,
          baselineLabel: 'raw per-message postMessage',
          target: { kind: 'min-ratio', ratio: 1 },
        },
      ];
    },
  },
];

export { cases };

/**
 * Big data (issue 14), each figure beside its raw baseline in the same run:
 * - `worker.transfer_1mb_us`: a 1 MB ArrayBuffer moved to a worker_threads node and back (a call
 *   and its reply, both with a transfer list) against raw `postMessage(buf, [buf])` there and back;
 * - `stream.tcp_mbps`: 256 MB streamed as 64 KB string chunks from another process over TCP
 *   (`ref.stream`, default windows: 256 chunks, 2 MiB) against a raw `net` socket writing the same chunks as
 *   length-prefixed frames;
 * - `tcp.bulk_mbps`: 200 messages of 1 MB to another process with `await ref.sendAwait(msg)`
 *   (end-to-end credit) against a raw socket writing the same frames with its own backpressure;
 * - `tcp.call_under_flood_p99_us`: call p99 to that process while a one-way flood of awaited
 *   1 MB sends runs on the same link, beside `tcp.quiet_call_p99_us` measured in the same run.
 * The far sides are bench/flow-peer.ts.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createNode, type ActorRef } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { interleaved, now, percentile, type BenchCase, type Result } from './harness.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

const SECRET = 'bench-secret';
const boot = new URL('../tests/fixtures/tsx-worker.mjs', import.meta.url);
const peer = new URL('./flow-peer.ts', import.meta.url);
const MB = 1024 * 1024;
/**
 * Moves per round of `worker.transfer`, and rounds run first, unmeasured. A call path warms up
 * over its first few thousand calls (V8 tiers the functions up one by one: measured, the round
 * trip falls from ~200 µs to ~70 µs over about 3000 calls, flat under `--no-opt`); like
 * `worker.rtt` (5000 calls before it measures), this measures the warm path, not the warm-up.
 */
const MOVES = 1_000;
const MOVE_WARMUP_ROUNDS = 5;

/** Median round trip (µs) of `n` moves of one 1 MB buffer there and back through `roundTrip`. */
async function moves(
  n: number,
  roundTrip: (buf: ArrayBuffer) => Promise<ArrayBuffer>,
): Promise<number> {
  let buf = new ArrayBuffer(MB);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = now();
    buf = await roundTrip(buf);
    times[i] = (now() - t0) * 1000;
  }
  if (buf.byteLength !== MB) throw new Error(`the buffer came back with ${buf.byteLength} bytes`);
  return percentile(times.sort(), 50);
}

export const cases: BenchCase[] = [
  {
    name: 'worker.transfer',
    async run(): Promise<Result[]> {
      const raw = new Worker(boot, { workerData: { entry: peer.href, mode: 'raw' } });
      const thread = new Worker(boot, { workerData: { entry: peer.href, mode: 'troupe' } });
      const node = createNode({ name: 'bench-flow-main' });
      try {
        await spawnWorkerNode(node, thread);
        for (let i = 0; i < 400 && !node.whereis('back'); i++)
          await new Promise((r) => setTimeout(r, 5));
        const back = node.whereis('back') as ActorRef<{ buf: ArrayBuffer }, { buf: ArrayBuffer }>;
        if (!back) throw new Error('the worker node did not register `back`');
        const r = await interleaved(
          {
            troupe: () =>
              moves(MOVES, async (buf) => (await back.call({ buf }, { transfer: [buf] })).buf),
            raw: () =>
              moves(MOVES, (buf) => {
                const p = new Promise<ArrayBuffer>((res) => raw.once('message', res));
                raw.postMessage(buf, [buf]);
                return p;
              }),
          },
          { warmup: MOVE_WARMUP_ROUNDS, reps: 5 },
        );
        return [
          {
            key: 'worker.transfer_1mb_us',
            unit: 'µs',
            value: r.troupe,
            baseline: r.raw,
            baselineLabel: 'raw postMessage + transfer',
            target: { kind: 'max-ratio', ratio: 1.5 },
            note: 'worker.transfer_1mb_us: median round trip of a 1 MB ArrayBuffer moved to a worker_threads node and back (call + reply with transfer lists)',
          },
        ];
      } finally {
        await node.shutdown();
        await Promise.all([raw.terminate(), thread.terminate()]);
      }
    },
  },
  {
    name: 'stream.tcp',
    async run(): Promise<Result[]> {
      const child = fork(fileURLToPath(peer), ['tcp'], {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, BENCH_SECRET: SECRET },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const node = createNode({
        name: 'bench-flow-tcp',
        secret: SECRET,
        transports: [createTcpTransport()],
      });
      try {
        const info = await new Promise<{
          address: string;
          node: string;
          port: number;
          sinkPort: number;
        }>((res, rej) => {
          child.once('message', res as (m: unknown) => void);
          child.once('exit', () => rej(new Error('flow peer exited')));
        });
        await node.connect(info.address);
        for (
          let i = 0;
          i < 400 && !(node.whereis('bytes') && node.whereis('bulk') && node.whereis('echo'));
          i++
        )
          await new Promise((r) => setTimeout(r, 5));
        const size = 64 * 1024;
        const count = (256 * MB) / size;
        const r = await interleaved(
          {
            troupe: async () => {
              const t0 = now();
              let n = 0;
              for await (const c of node.stream<string>('bytes', { count, size }))
                if ((c as string).length === size) n++;
              if (n !== count) throw new Error(`stream delivered ${n} of ${count} chunks`);
              return 256 / ((now() - t0) / 1000);
            },
            raw: () =>
              new Promise<number>((res, rej) => {
                const t0 = now();
                let n = 0;
                const socket = net.connect({ host: '127.0.0.1', port: info.port }, () =>
                  socket.write(JSON.stringify({ count, size })),
                );
                socket.on(
                  'data',
                  frameReader((text) => {
                    if (text.length === size) n++;
                    if (n === count) {
                      socket.destroy();
                      res(256 / ((now() - t0) / 1000));
                    }
                  }),
                );
                socket.once('error', rej);
              }),
          },
          { warmup: 1, reps: 3 },
        );
        // Bulk: awaited 1 MB sends vs a raw socket writing the same frames.
        const bulk = node.whereis('bulk')!;
        const echo = node.whereis('echo')!;
        const one = 'b'.repeat(MB);
        const N = 200;
        const b = await interleaved(
          {
            troupe: async () => {
              const before = await node.call<number>(bulk, 'count?');
              const t0 = now();
              for (let i = 0; i < N; i++) await bulk.sendAwait(one);
              while ((await node.call<number>(bulk, 'count?')) < before + N);
              return N / ((now() - t0) / 1000);
            },
            raw: () =>
              new Promise<number>((res, rej) => {
                const t0 = now();
                const socket = net.connect({ host: '127.0.0.1', port: info.sinkPort }, async () => {
                  socket.write(encodeFrames([String(N)]));
                  for (let i = 0; i < N; i++)
                    if (!socket.write(encodeFrames([one])))
                      await new Promise((r) => socket.once('drain', r));
                });
                socket.once('data', () => {
                  socket.destroy();
                  res(N / ((now() - t0) / 1000));
                });
                socket.once('error', rej);
              }),
          },
          { warmup: 1, reps: 3 },
        );
        // Calls, quiet and under a flood of awaited bulk sends on the same link.
        const p99 = async (n: number): Promise<number> => {
          const t = new Float64Array(n);
          for (let i = 0; i < n; i++) {
            const t0 = now();
            await echo.call(i);
            t[i] = (now() - t0) * 1000;
          }
          return percentile(t.sort(), 99);
        };
        const quiet = await p99(2000);
        let flooding = true;
        const flood = (async () => {
          while (flooding) await bulk.sendAwait(one);
        })();
        const loud = await p99(500);
        flooding = false;
        await flood;
        return [
          {
            key: 'tcp.bulk_mbps',
            unit: 'MB/s',
            value: b.troupe,
            baseline: b.raw,
            baselineLabel: 'raw socket + drain',
            target: { kind: 'min-ratio', ratio: 0.8 },
            note: 'tcp.bulk_mbps: 200 messages of 1 MB to another process, awaited sends (end-to-end credit, window 4 MiB) vs a raw socket',
          },
          {
            key: 'tcp.call_under_flood_p99_us',
            unit: 'µs',
            value: loud,
            baseline: quiet,
            baselineLabel: 'quiet call p99, same run',
            target: { kind: 'max-ratio', ratio: 3 },
            note: 'tcp.call_under_flood_p99_us: echo call p99 while awaited 1 MB sends flood the same link (calls take the priority lane; 1 MB sends leave in 32 Ki pieces)',
          },
          {
            key: 'stream.tcp_mbps',
            unit: 'MB/s',
            value: r.troupe,
            baseline: r.raw,
            baselineLabel: 'raw socket, same chunks',
            target: { kind: 'min-ratio', ratio: 0.7 },
            note: 'stream.tcp_mbps: 256 MB as 64 KB string chunks from another process (ref.stream, default windows: 256 chunks, 2 MiB) vs a raw socket writing the same chunks length-prefixed',
          },
        ];
      } finally {
        await node.shutdown();
        child.kill('SIGKILL');
      }
    },
  },
];

/**
 * Big data (issue 14), each figure beside its raw baseline in the same run:
 * - `worker.transfer_1mb_us`: a 1 MB ArrayBuffer moved to a worker_threads node and back (a call
 *   and its reply, both with a transfer list) against raw `postMessage(buf, [buf])` there and back;
 * - `stream.tcp_mbps`: 256 MB streamed as 64 KB string chunks from another process over TCP
 *   (`ref.stream`, credit window 16) against a raw `net` socket writing the same chunks as
 *   length-prefixed frames. The far sides are bench/flow-peer.ts.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createNode, type ActorRef } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { interleaved, now, percentile, type BenchCase, type Result } from './harness.ts';
import { frameReader } from './raw-frames.ts';

const SECRET = 'bench-secret';
const boot = new URL('../tests/fixtures/tsx-worker.mjs', import.meta.url);
const peer = new URL('./flow-peer.ts', import.meta.url);
const MB = 1024 * 1024;

/** Median round trip (µs) of `n` moves of one 1 MB buffer there and back through `roundTrip`. */
async function moves(n: number, roundTrip: (buf: ArrayBuffer) => Promise<ArrayBuffer>): Promise<number> {
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
        for (let i = 0; i < 400 && !node.whereis('back'); i++) await new Promise((r) => setTimeout(r, 5));
        const back = node.whereis('back') as ActorRef<{ buf: ArrayBuffer }, { buf: ArrayBuffer }>;
        if (!back) throw new Error('the worker node did not register `back`');
        const r = await interleaved(
          {
            troupe: () => moves(500, async (buf) => (await back.call({ buf }, { transfer: [buf] })).buf),
            raw: () =>
              moves(500, (buf) => {
                const p = new Promise<ArrayBuffer>((res) => raw.once('message', res));
                raw.postMessage(buf, [buf]);
                return p;
              }),
          },
          { warmup: 1, reps: 5 },
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
      const child = fork(fileURLToPath(peer), ['tcp'], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_SECRET: SECRET }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const node = createNode({ name: 'bench-flow-tcp', secret: SECRET, transports: [createTcpTransport()] });
      try {
        const info = await new Promise<{ address: string; node: string; port: number }>((res, rej) => {
          child.once('message', res as (m: unknown) => void);
          child.once('exit', () => rej(new Error('flow peer exited')));
        });
        await node.connect(info.address);
        for (let i = 0; i < 400 && !node.whereis('bytes'); i++) await new Promise((r) => setTimeout(r, 5));
        const size = 64 * 1024;
        const count = (256 * MB) / size;
        const r = await interleaved(
          {
            troupe: async () => {
              const t0 = now();
              let n = 0;
              for await (const c of node.stream<string>('bytes', { count, size })) if ((c as string).length === size) n++;
              if (n !== count) throw new Error(`stream delivered ${n} of ${count} chunks`);
              return 256 / ((now() - t0) / 1000);
            },
            raw: () =>
              new Promise<number>((res, rej) => {
                const t0 = now();
                let n = 0;
                const socket = net.connect({ host: '127.0.0.1', port: info.port }, () => socket.write(JSON.stringify({ count, size })));
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
        return [
          {
            key: 'stream.tcp_mbps',
            unit: 'MB/s',
            value: r.troupe,
            baseline: r.raw,
            baselineLabel: 'raw socket, same chunks',
            target: { kind: 'min-ratio', ratio: 0.7 },
            note: 'stream.tcp_mbps: 256 MB as 64 KB string chunks from another process (ref.stream, window 16) vs a raw socket writing the same chunks length-prefixed',
          },
        ];
      } finally {
        await node.shutdown();
        child.kill('SIGKILL');
      }
    },
  },
];

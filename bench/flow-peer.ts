/**
 * The far sides of bench/flow.ts.
 * - as a child process (`flow-peer.ts tcp`): a troupe node on TCP 127.0.0.1 with `bytes` (a call
 *   { count, size } answers with a stream of `count` strings of `size` characters) and a raw
 *   `net` server that writes the same strings as length-prefixed frames to whoever connects, with
 *   the socket's own backpressure; tells its parent { address, node, port } over IPC.
 * - as a worker thread (`workerData.mode`): `raw` moves every ArrayBuffer posted to it straight
 *   back with a transfer list; `troupe` is a worker node whose `back` actor answers a call
 *   { buf } with { buf }, moved back with a transfer list.
 */
import net from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { behaviour, createNode } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWorkerNode } from '../adapters/worker.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

const chunkOf = (i: number, filler: string) => String(i).padStart(10, '0') + filler.slice(10);

if (isMainThread) {
  const node = createNode({
    name: `flow-peer-${process.pid}`,
    secret: process.env.BENCH_SECRET ?? 'bench-secret',
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
  });
  node.spawn(
    behaviour({
      handle: (m: { count: number; size: number }, _s: undefined, ctx) => {
        const filler = 'x'.repeat(m.size);
        ctx.reply(
          (async function* () {
            for (let i = 0; i < m.count; i++) yield chunkOf(i, filler);
          })(),
        );
      },
    }),
    { name: 'bytes' },
  );
  // `bulk`: counts what it takes; a call 'count?' answers how many.
  let bulk = 0;
  node.spawn(
    async (self) => {
      for (;;) {
        const m = await self.receive();
        if (m === 'count?') self.reply(bulk);
        else bulk++;
      }
    },
    { name: 'bulk' },
  );
  node.spawn(
    async (self) => {
      for (;;) self.reply(await self.receive());
    },
    { name: 'echo' },
  );
  const [address] = await node.listen();
  // The raw sink: on a connection whose first bytes are `SINK <n>\n`, read n length-prefixed frames, then write `done`.
  const sinks = net.createServer((socket) => {
    let want = -1;
    let got = 0;
    const read = frameReader((text) => {
      if (want < 0) want = Number(text);
      else if (++got === want) socket.write('done');
    });
    socket.on('data', read);
  });
  await new Promise<void>((r) => sinks.listen(0, '127.0.0.1', r));
  const server = net.createServer((socket) => {
    socket.once('data', (req) => {
      const { count, size } = JSON.parse(req.toString()) as { count: number; size: number };
      const filler = 'x'.repeat(size);
      let i = 0;
      const pump = (): void => {
        while (i < count) {
          if (!socket.write(encodeFrames([chunkOf(i++, filler)])))
            return void socket.once('drain', pump);
        }
      };
      pump();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.send!({
    address,
    node: node.id,
    port: (server.address() as net.AddressInfo).port,
    sinkPort: (sinks.address() as net.AddressInfo).port,
  });
  process.on('message', (m: { exit?: boolean }) => m.exit && process.exit(0));
} else if ((workerData as { mode: string }).mode === 'raw') {
  parentPort!.on('message', (buf: ArrayBuffer) => parentPort!.postMessage(buf, [buf]));
} else {
  const { node } = createWorkerNode({ name: 'flow-worker' });
  node.spawn(
    async (self) => {
      for (;;) {
        const m = (await self.receive()) as { buf: ArrayBuffer };
        self.reply({ buf: m.buf }, { transfer: [m.buf] });
      }
    },
    { name: 'back' },
  );
}

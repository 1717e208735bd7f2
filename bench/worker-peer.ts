/**
 * The worker_threads side of bench/worker.ts (and of the Comlink peer in bench/peers.ts).
 * `workerData.mode`:
 *   raw     — echoes each message posted to it, or counts them ({ arm: n } → posts 'done' at n);
 *             a string is a batch: a JSON array of messages, each counted
 *   troupe  — a worker node (troupe/worker) with a typed `echo` behaviour, a typed `sink` and
 *             `sink-ctl` (a call arms the sink; it says 'done' to a ref when the sink has counted n)
 *   comlink — exposes { echo(m) } with Comlink over the parent port
 */
import { parentPort, workerData } from 'node:worker_threads';
import { behaviour, type ActorRef } from '../core/index.ts';
import { createWorkerNode } from '../adapters/worker.ts';
import { Msg, Sink } from './messages.ts';
import { comlinkEndpoint } from './comlink-endpoint.ts';

const port = parentPort!;
const mode = (workerData as { mode: string }).mode;
if (mode === 'raw') {
  let expect = 0;
  let count = 0;
  let echo = true;
  const one = (m: unknown) => {
    if (echo) port.postMessage(m);
    else if (++count === expect) port.postMessage('done');
  };
  port.on('message', (m: unknown) => {
    if (typeof m === 'string') {
      const batch = JSON.parse(m) as Msg[];
      for (let i = 0; i < batch.length; i++) one(batch[i]);
      return;
    }
    const c = m as { arm?: number; echo?: boolean };
    if (c.arm !== undefined) {
      expect = c.arm;
      count = 0;
      echo = false;
      return;
    }
    if (c.echo) {
      echo = true;
      return;
    }
    one(m);
  });
} else if (mode === 'comlink') {
  const Comlink = await import('comlink');
  Comlink.expose({ echo: (m: Msg) => m }, await comlinkEndpoint(port));
} else {
  const { node } = createWorkerNode({ name: 'bench-worker', handshakeTimeout: 30_000 });
  // As a user's actors would: each validates its messages with a zod schema.
  node.spawn(
    behaviour({
      schema: Msg,
      handle(m, _s, ctx) {
        ctx.reply(m);
      },
    }),
    { name: 'echo' },
  );
  const sink = new Sink();
  node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }), { name: 'sink' });
  node.spawn(
    behaviour<{ arm: number; to: ActorRef<string> }, undefined>({
      handle(c, _s, ctx) {
        sink.arm(c.arm).then(() => c.to.send('done'));
        ctx.reply(true);
      },
    }),
    { name: 'sink-ctl' },
  );
}

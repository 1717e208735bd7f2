/**
 * The worker_threads side of bench/worker.ts. `workerData.mode`:
 *   raw    — echoes each message posted to it, or counts them ({ arm: n } → posts 'done' at n)
 *   troupe — a worker node (troupe/worker) with an `echo` behaviour (typed) and a `sink`
 */
import { parentPort, workerData } from 'node:worker_threads';
import { behaviour, type ActorRef } from '../core/index.ts';
import { createWorkerNode } from '../adapters/worker.ts';
import { Msg } from './messages.ts';

const port = parentPort!;
if ((workerData as { mode: string }).mode === 'raw') {
  let expect = 0;
  let count = 0;
  let echo = true;
  port.on('message', (m: unknown) => {
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
    if (echo) port.postMessage(m);
    else if (++count === expect) port.postMessage('done');
  });
} else {
  const { node } = createWorkerNode({ name: 'bench-worker' });
  node.spawn(
    behaviour({
      schema: Msg,
      handle(m, _s, ctx) {
        ctx.reply(m);
      },
    }),
    { name: 'echo' },
  );
  let expect = 0;
  let count = 0;
  let notify: ActorRef<string> | undefined;
  node.spawn(
    behaviour<unknown, undefined>({
      handle(m) {
        const c = m as { arm?: number; to?: ActorRef<string> };
        if (c.arm !== undefined) {
          expect = c.arm;
          count = 0;
          notify = c.to;
          return;
        }
        if (++count === expect) notify!.send('done');
      },
    }),
    { name: 'sink' },
  );
}

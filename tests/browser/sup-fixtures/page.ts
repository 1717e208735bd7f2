// The supervision fixture page: a supervisor whose child runs in a Web Worker (workerChild),
// driven from Playwright through `window.supx` (plain JSON out).
import { createNode, supervisor, whichChildren, type ChildInfo } from '../../../core/index.ts';
import { workerChild } from '../../../patterns/supervised-worker.ts';

const node = createNode({ secret: 'sup-browser-fixture' });
const workers: Worker[] = [];
const sup = node.spawn(
  supervisor({
    intensity: 10,
    children: [
      {
        id: 'ww',
        name: 'ww',
        start: workerChild({
          create: () => new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
          behaviour: 'w.echo',
          onStart: (w) => workers.push(w),
        }),
      },
    ],
  }),
);

async function restarted(n: number): Promise<ChildInfo> {
  const end = Date.now() + 20_000;
  for (;;) {
    const [c] = await whichChildren(sup);
    if (c.restarts === n && c.status === 'running') return c;
    if (Date.now() > end) throw new Error(`not restarted ${n} times: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Step {
  lastExit: unknown;
  node: string;
  reply: string;
  ms: number;
}

async function step(n: number, act: () => void): Promise<Step> {
  const t0 = performance.now();
  act();
  const c = await restarted(n);
  const reply = await node.call<string>('ww', 'ping');
  return { lastExit: c.lastExit, node: c.node!, reply, ms: performance.now() - t0 };
}

const supx = {
  async run() {
    const start = await restarted(0);
    const first = await node.call<string>('ww', 'ping');
    const afterTerminate = await step(1, () => workers[0].terminate());
    const afterThrow = await step(2, () => node.send('ww', 'throw'));
    const afterCrash = await step(3, () => node.send('ww', 'crash'));
    return {
      firstNode: start.node,
      first,
      afterTerminate,
      afterThrow,
      afterCrash,
      workers: workers.length,
      peers: node.nodes(),
    };
  },
};
(globalThis as { supx?: typeof supx }).supx = supx;
export type Supx = typeof supx;

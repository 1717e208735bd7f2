// A supervised Web Worker: its node serves supervision (so its child can be named) and defines
// `w.echo`: answers `${nodeId}:${msg}`; 'throw' makes the actor throw; 'crash' throws an uncaught
// error in the worker itself (the Worker's error event).
import { createWorkerNode } from '../../../adapters/worker.ts';
import { serveSupervision } from '../../../core/index.ts';

const { node } = createWorkerNode();
serveSupervision(node);
node.define('w.echo', undefined, async (self) => {
  for (;;) {
    const m = await self.receive();
    if (m === 'throw') throw new Error('thrown in the worker');
    if (m === 'crash') {
      setTimeout(() => {
        throw new Error('uncaught in the worker');
      }, 0);
      continue;
    }
    self.reply(`${self.node.id}:${String(m)}`);
  }
});

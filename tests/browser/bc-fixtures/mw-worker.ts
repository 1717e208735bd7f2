// A Web Worker that is a troupe worker node (patterns/master-worker.ts `serveWorker`): linked to
// its page by `spawnWorkerNode`, serving `fib` and `say`; `terminate` from the master closes it.
import { z } from 'zod';
import { createWorkerNode } from '../../../adapters/worker.ts';
import { defineFunction } from '../../../patterns/functions.ts';
import { serveWorker } from '../../../patterns/master-worker.ts';

const fibOf = (n: number): number => (n < 2 ? n : fibOf(n - 1) + fibOf(n - 2));

const { node } = createWorkerNode({ heartbeatInterval: 500, heartbeatTimeout: 6000 });
serveWorker(node, {
  info: { host: 'web-worker' },
  functions: {
    fib: defineFunction({
      args: z.number().int().min(0).max(30),
      result: z.object({ value: z.number(), by: z.string() }),
      run: (n) => ({ value: fibOf(n), by: node.id }),
    }),
    say: defineFunction({
      args: z.string().max(200),
      result: z.literal(true),
      run: (s) => (console.log(`${node.id} says: ${s}`), true as const),
    }),
  },
  onTerminate: async () => {
    await node.shutdown();
    self.close();
  },
});

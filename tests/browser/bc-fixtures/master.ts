// The master/worker fixture page: a node that spawns Web Worker nodes (`spawnWorkerNode`) running
// `serveWorker`, and a master (`runMaster`) over them, driven through `window.mwx`.
import { createNode } from '../../../core/index.ts';
import { spawnWorkerNode } from '../../../adapters/worker.ts';
import { runMaster } from '../../../patterns/master-worker.ts';
import type { LogEntry } from '../../../patterns/master-worker.ts';

const node = createNode({
  name: `master-${Math.random().toString(36).slice(2, 8)}`,
  secret: 'mw-browser-fixture-secret',
  heartbeatInterval: 500,
  heartbeatTimeout: 6000,
});

const mwx = {
  /**
   * Spawn `count` Web Worker nodes, find them with a master, run `fib(n)` on each and a `say`
   * whose log line comes back here, terminate them all; report what was seen.
   */
  async run(count: number, n: number) {
    const ids = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        spawnWorkerNode(
          node,
          new Worker(new URL('./mw-worker.ts', import.meta.url), {
            type: 'module',
            name: `mw-${i}`,
          }),
          { label: `mw-${i}` },
        ),
      ),
    );
    const logs: LogEntry[] = [];
    const out = await runMaster(
      node,
      { minWorkers: count, findTimeout: 10_000 },
      async (workers, master) => {
        await master.redirectLogsHere({ onLog: (e) => logs.push(e) });
        const fibs = await Promise.all(
          workers.map((w) => w.run<{ value: number; by: string }>('fib', n)),
        );
        await Promise.all(workers.map((w) => w.run('say', `hello from ${w.id}`)));
        const until = Date.now() + 5000;
        while (logs.length < count && Date.now() < until)
          await new Promise((r) => setTimeout(r, 25));
        const found = workers.map((w) => ({
          id: w.id,
          host: w.info.info.host,
          functions: [...w.info.functions].sort(),
        }));
        await master.terminateAllWorkers({ timeout: 10_000 });
        return { found, fibs, left: master.workers().length };
      },
    );
    return {
      ids: [...ids].sort(),
      ...out,
      logs: logs.map((e) => `${e.worker}|${e.stream}|${e.line}`).sort(),
      peersAfter: node.peers(),
    };
  },
};

(globalThis as unknown as { mwx: typeof mwx }).mwx = mwx;

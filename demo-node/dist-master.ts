// Master and workers (after Cloud Haskell's SimpleLocalnet). Start some workers, then a master:
//
//   npx tsx demo-node/dist-worker.ts --secret s3cret --name w1     # one terminal each
//   npx tsx demo-node/dist-worker.ts --secret s3cret --name w2
//   npx tsx demo-node/dist-master.ts --secret s3cret --workers 2 --terminate
//
// The master finds the workers by multicast, takes their console output, runs a job on each
// (a served function and a spawned behaviour), looks for late-comers for a while, and with
// --terminate stops every worker (their processes exit).
import { startMaster } from '../patterns/node.ts';
import { parseDistArgs, stamp } from './dist-args.ts';

const { cluster, values } = parseDistArgs(
  { workers: { type: 'string' }, wait: { type: 'string' }, terminate: { type: 'boolean' } },
  `dist-master: find workers, run jobs on them, collect their logs, terminate them
  --workers N     wait for at least N workers (default 1)
  --wait MS       then look for late workers for MS (default 0)
  --terminate     terminate every worker at the end`,
);
const log = (line: string) => console.log(`[${stamp()}] ${line}`);

await startMaster(
  {
    ...cluster,
    name: cluster.name ?? 'master',
    minWorkers: Number(values.workers ?? 1),
    findTimeout: 15_000,
  },
  async (workers, master) => {
    log(
      `found ${workers.length} worker(s): ${workers.map((w) => `${w.id} (pid ${w.info.info.pid})`).join(', ')}`,
    );
    await master.redirectLogsHere(); // their console.log lines print here as [worker] line
    for (const w of workers) await w.run('say', `hello, master ${master.node.id}`);
    const results = await Promise.all(
      workers.map(async (w, i) => ({
        id: w.id,
        fib: await w.run<{ value: number }>('fib', 30 + i),
        sum: await w.spawn<number>('sum', [1, 2, 3, i]),
      })),
    );
    for (const r of results) log(`${r.id}: fib = ${r.fib.value}, sum = ${r.sum}`);
    const wait = Number(values.wait ?? 0);
    if (wait > 0) {
      const late = await master.findWorkers({ timeout: wait, min: 1 });
      log(late.length ? `late workers: ${late.map((w) => w.id).join(', ')}` : 'no late worker');
    }
    if (values.terminate) {
      await master.terminateAllWorkers();
      log('terminated every worker');
    }
  },
);
process.exit(0);

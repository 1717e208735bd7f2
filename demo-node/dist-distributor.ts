// Job distribution with a local fallback and a live status page. Start workers, then this:
//
//   npx tsx demo-node/dist-worker.ts --secret s3cret --name w1      # in one or more terminals
//   npx tsx demo-node/dist-distributor.ts --secret s3cret --calls 40
//
// It finds the workers by multicast, serves the status page on 127.0.0.1 (URL printed), and
// calls fib through the distributor every --every ms: remote while a worker can serve it, local
// when none can (kill the workers, start them again, and watch the `by` column change).
import { createDistributor, workerFunction } from '../patterns/index.ts';
import { startClusterNode } from '../patterns/node.ts';
import { fibOf } from './dist-functions.ts';
import { parseDistArgs, stamp } from './dist-args.ts';
import { serveStatusPage } from '../server/status-page.ts';

const { cluster, values } = parseDistArgs(
  {
    calls: { type: 'string' },
    every: { type: 'string' },
    'http-port': { type: 'string' },
    serve: { type: 'boolean' },
  },
  `dist-distributor: a distributor, its status page, and calls with a local fallback
  --calls N        calls to make (default 20)
  --every MS       between calls (default 500)
  --http-port P    status page port on 127.0.0.1 (default: a free one)
  --serve          keep serving the status page after the calls (until SIGINT)`,
);
const node = await startClusterNode({ ...cluster, name: cluster.name ?? 'distributor' });
const dist = createDistributor(node);
const page = await serveStatusPage(dist, {
  port: values['http-port'] ? Number(values['http-port']) : 0,
});
console.log(`listening ${node.id} ${node.addresses.join(' ')}`);
console.log(`status page ${page.url}`);

const fib = workerFunction(dist, 'fib', (n: number) => ({ value: fibOf(n), by: 'local' }), {
  timeout: 5000,
});
const calls = Number(values.calls ?? 20);
const every = Number(values.every ?? 500);
await dist
  .waitForWorkers(1, 3000)
  .catch(() => console.log(`[${stamp()}] no worker yet: calls run locally until one comes`));
for (let i = 0; i < calls; i++) {
  const n = 20 + (i % 50);
  const r = await fib(n);
  console.log(
    `[${stamp()}] fib(${n}) = ${r.value} by ${r.by} (${r.by === 'local' ? 'local fallback' : 'remote'})`,
  );
  await new Promise((res) => setTimeout(res, every));
}
console.log(`[${stamp()}] ${fib.stats.remote} remote, ${fib.stats.local} local`);
const stop = async () => {
  dist.stop();
  await page.close();
  await node.shutdown();
  process.exit(0);
};
if (values.serve) {
  console.log(`[${stamp()}] serving ${page.url} until SIGINT`);
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
} else {
  await stop();
}

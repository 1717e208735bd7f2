// A worker process: joins the cluster by multicast (no seeds), serves the functions of
// dist-functions.ts (fib, slowSquare, cpuFib, say, broken) and the behaviour `sum`, and waits
// for a master or a distributor. A master's terminate (or SIGINT/SIGTERM) stops it cleanly.
//
//   npx tsx demo-node/dist-worker.ts --secret s3cret --name w1
import { z } from 'zod';
import { startWorker } from '../patterns/node.ts';
import { makeFunctions } from './dist-functions.ts';
import { parseDistArgs, stamp } from './dist-args.ts';

const { cluster, values } = parseDistArgs(
  { concurrency: { type: 'string' } },
  'dist-worker: a worker node for masters and distributors',
);
const name = cluster.name ?? `worker-${process.pid}`;
const { node } = await startWorker({
  ...cluster,
  name,
  functions: makeFunctions(name),
  concurrency: values.concurrency ? Number(values.concurrency) : undefined,
  setup: (n) => {
    // A behaviour a master can spawn here; it ends with the sum (Erlangen's pattern).
    n.define('sum', z.array(z.number()).max(1_000_000), async (_self, xs: number[]) =>
      xs.reduce((a, b) => a + b, 0),
    );
  },
});
const log = (line: string) => console.log(`[${stamp()}] ${line}`);
node.events.on('linkUp', (e) => log(`peer up ${e.node}`));
node.events.on('linkDown', (e) => log(`peer down ${e.node} ${e.reason}`));
// Tests and scripts read this line.
console.log(`listening ${node.id} ${node.addresses.join(' ')}`);

// Parallel map (Erlangen's pmap as a library function) on worker threads and on remote nodes,
// with the speedup over one worker on a CPU-bound job (naive fib).
//
//   npx tsx demo-node/dist-pmap.ts --secret s3cret                   # threads only
//   npx tsx demo-node/dist-pmap.ts --secret s3cret --spawn-workers 2 # also 2 worker processes
//
// With --spawn-workers it starts demo-node/dist-worker.ts processes itself (on the same
// multicast group) and stops them at the end; otherwise it uses the workers it finds.
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { nodePool, parallelMap, type MapPool } from '../patterns/index.ts';
import { createThreadPool, startClusterNode } from '../patterns/node.ts';
import { slowFib } from './dist-functions.ts';
import { parseDistArgs } from './dist-args.ts';

const { cluster, values } = parseDistArgs(
  {
    n: { type: 'string' },
    count: { type: 'string' },
    threads: { type: 'string' },
    'spawn-workers': { type: 'string' },
  },
  `dist-pmap: parallel map on threads and remote nodes, with speedups
  --n N               fib(N) per item (default 30)
  --count C           items (default 32)
  --threads T         threads in the big pool (default: CPU count)
  --spawn-workers W   start W worker processes for the remote part (default 0: use those found)`,
);
const n = Number(values.n ?? 30);
const count = Number(values.count ?? 32);
const items = Array.from({ length: count }, () => n);
const expected = items.map(slowFib);

async function timed(label: string, pool: MapPool): Promise<number> {
  await parallelMap('cpuFib', items.slice(0, Math.min(4, count)), { workers: pool, chunkSize: 1 }); // warm up
  const t = performance.now();
  const out = await parallelMap('cpuFib', items, { workers: pool, chunkSize: 2 });
  const ms = performance.now() - t;
  if (JSON.stringify(out) !== JSON.stringify(expected)) throw new Error(`${label}: wrong results`);
  console.log(`${label.padEnd(26)} ${ms.toFixed(0).padStart(6)} ms`);
  return ms;
}

const functions = new URL('./dist-functions.ts', import.meta.url);
const threads = Number(values.threads ?? os.availableParallelism());
console.log(
  `${count} x fib(${n}), plain map here: ${(() => {
    const t = performance.now();
    items.map(slowFib);
    return (performance.now() - t).toFixed(0);
  })()} ms`,
);
const one = await createThreadPool({ size: 1, functions });
const many = await createThreadPool({ size: threads, functions });
const t1 = await timed('threads: 1', one);
const tn = await timed(`threads: ${threads}`, many);
console.log(`speedup threads ${threads} vs 1: ${(t1 / tn).toFixed(2)}x`);
await one.close();
await many.close();

const spawnCount = Number(values['spawn-workers'] ?? 0);
const node = await startClusterNode({
  ...cluster,
  secret: cluster.secret ?? process.env.TROUPE_SECRET ?? 'pmap-demo-secret',
  name: `pmap-${process.pid}`,
});
const children: ChildProcess[] = [];
// The spawned workers join the same way this node did (same secret, group and cluster name).
const same = Object.entries({
  cluster: values.cluster,
  group: values.group,
  mport: values.mport,
  interface: values.interface,
  interval: values.interval,
})
  .filter(([, v]) => typeof v === 'string')
  .flatMap(([k, v]) => [`--${k}`, v as string]);
for (let i = 0; i < spawnCount; i++) {
  const script = fileURLToPath(new URL('./dist-worker.ts', import.meta.url));
  const args = ['--import', 'tsx', script, '--name', `pmap-worker-${i + 1}`, ...same];
  // The secret goes by environment, not on a command line others can read.
  children.push(
    spawn(process.execPath, args, {
      stdio: 'ignore',
      env: { ...process.env, TROUPE_SECRET: node.options.secret },
    }),
  );
}
const pool = nodePool(node);
const until = Date.now() + (spawnCount ? 20_000 : 3000);
while (pool.workers().length < Math.max(1, spawnCount) && Date.now() < until)
  await new Promise((r) => setTimeout(r, 100));
const ids = pool.workers().sort();
if (ids.length === 0) {
  console.log(
    'remote: no worker nodes found (start some with dist-worker.ts, or pass --spawn-workers 2)',
  );
} else {
  const r1 = await timed(`remote nodes: 1 (${ids[0]})`, nodePool(node, { nodes: [ids[0]] }));
  const rn = await timed(`remote nodes: ${ids.length}`, pool);
  console.log(`speedup remote ${ids.length} vs 1: ${(r1 / rn).toFixed(2)}x`);
}
for (const c of children) c.kill('SIGTERM');
await node.shutdown();
process.exit(0);

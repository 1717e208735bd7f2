// One thread of a createThreadPool pool: a troupe node linked to the parent over the thread's
// port, with a function server the parent starts by remote spawn. Named functions come from the
// module in `workerData.functions` (its `functions` export, a FunctionTable); plain functions
// arrive as source text, which this thread accepts (it trusts its parent).
import { workerData } from 'node:worker_threads';
import { createWorkerNode } from '../adapters/worker.ts';
import { defineFunctionServer, type FunctionTable } from './functions.ts';

const data = workerData as { name: string; functions?: string };
let table: FunctionTable = {};
if (data.functions) {
  const mod = (await import(data.functions)) as {
    functions?: FunctionTable;
    default?: FunctionTable;
  };
  table = mod.functions ?? mod.default ?? {};
}
const { node } = createWorkerNode({ name: data.name });
defineFunctionServer(node, table, { allowSource: true, concurrency: 1 });

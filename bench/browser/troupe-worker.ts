// The troupe side's worker: a worker node with the echo registered as `echo-worker`.
import { createWorkerNode } from '../../adapters/worker.ts';
import { startEcho } from './echo.ts';

const { node } = createWorkerNode();
startEcho(node, 'echo-worker');

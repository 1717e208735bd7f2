// The `worker_threads` entry of createThreadPool (troupe/patterns/node). On Node 20 a worker's
// entry module does not go through the parent's loader hooks, so register tsx here before
// loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./thread-worker.ts');

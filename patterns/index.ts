/**
 * troupe/patterns — host-neutral workflows built on the core API: function servers, a job
 * distributor with local fallback, parallel map, master and workers. The Node layer (processes,
 * TCP, multicast discovery, `worker_threads` pools) is `troupe/patterns/node`; Web Worker pools
 * are `troupe/patterns/browser`.
 */
export {
  defineFunction,
  serveFunctions,
  defineFunctionServer,
  functionServers,
  outcomeError,
  unwrap,
  isWorkerLoss,
  FunctionRequest,
  FUNCTION_SERVER_PREFIX,
  FUNCTION_SERVER_BEHAVIOUR,
} from './functions.ts';
export type {
  WorkerFunction,
  FunctionTable,
  Outcome,
  ServerInfo,
  ServeFunctionsOptions,
  FunctionServer,
  JobContext,
} from './functions.ts';
export {
  Distributor,
  createDistributor,
  distributorClient,
  workerFunction,
  DistributorRequest,
} from './distributor.ts';
export type {
  Delivery,
  JobOptions,
  JobRunner,
  DistributorOptions,
  DistributorStatus,
  DistributorClient,
  WorkerStatus,
  RunningJob,
  FailureRecord,
  WorkerFunctionOptions,
  RemoteOrLocal,
} from './distributor.ts';
export { parallelMap, refPool, nodePool } from './parallel-map.ts';
export type { MapFunction, MapPool, ParallelMapOptions } from './parallel-map.ts';
export { serveWorker, runMaster, Master, WORKER_PREFIX, ControlRequest } from './master-worker.ts';
export type {
  ServeWorkerOptions,
  WorkerService,
  WorkerHandle,
  WorkerInfo,
  LogEntry,
  FindOptions,
  MasterOptions,
  RedirectOptions,
} from './master-worker.ts';
export { PATTERN_ERROR_CODES, ALL_ERROR_CODES } from './errors.ts';
export type { PatternErrorCode } from './errors.ts';

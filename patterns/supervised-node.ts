/**
 * Node's supervised children: a `worker_threads` worker or a child process that runs a troupe
 * node (see {@link workerChild}). In the child process, `parentProcess()` is the endpoint to
 * pass to `createWorkerNode({ parent: { endpoint: parentProcess() } })`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import type { PortEndpoint } from '../adapters/worker.ts';
import { workerChild, type WorkerChildOptions } from './supervised-worker.ts';

/** Options shared by {@link threadChild} and {@link processChild}. */
export type NodeChildOptions<W extends PortEndpoint> = Omit<WorkerChildOptions<W>, 'create'>;

/**
 * A child spec `start` running the child in a new `worker_threads` worker of module `entry`
 * (which calls `createWorkerNode()` and defines `behaviour`).
 * @example
 * { id: 'resizer', start: threadChild(new URL('./resizer.js', import.meta.url), { behaviour: 'resize' }) }
 */
export function threadChild(
  entry: string | URL,
  options: NodeChildOptions<Worker> & { workerData?: unknown },
): ReturnType<typeof workerChild> {
  return workerChild<Worker>({
    ...options,
    create: () => new Worker(entry, { workerData: options.workerData }) as Worker,
  });
}

/** A child process as a port endpoint (its IPC channel). Killing it (`terminate()`) is SIGKILL. */
export function processEndpoint(child: ChildProcess): PortEndpoint & { process: ChildProcess } {
  return {
    process: child,
    postMessage: (m) => {
      if (child.connected) child.send(m as object);
    },
    on: (e, l) => child.on(e, l),
    off: (e, l) => child.off(e, l),
    terminate: () => child.kill('SIGKILL'),
  };
}

/** Inside a child process started by {@link processChild}: the endpoint to its parent. */
export function parentProcess(): PortEndpoint {
  return {
    postMessage: (m) => {
      if (process.connected) process.send!(m as object);
    },
    on: (e, l) => process.on(e, l),
    off: (e, l) => process.off(e, l),
  };
}

/**
 * A child spec `start` running the child in a new child process of `script` (forked with an
 * IPC channel; it calls `createWorkerNode({ parent: { endpoint: parentProcess() } })`).
 */
export function processChild(
  script: string,
  options: NodeChildOptions<PortEndpoint & { process: ChildProcess }> & {
    args?: unknown;
    argv?: string[];
    execArgv?: string[];
  },
): ReturnType<typeof workerChild> {
  return workerChild({
    ...options,
    create: () =>
      processEndpoint(
        fork(script, options.argv ?? [], {
          execArgv: options.execArgv,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      ),
  });
}

/**
 * Comlink's own Node adapter (`comlink/dist/esm/node-adapter.mjs`, which ships no types for that
 * path) wrapping a worker_threads `Worker` or `MessagePort` as a Comlink endpoint.
 */
import type { Endpoint } from 'comlink';
import type { MessagePort, Worker } from 'node:worker_threads';

const ADAPTER = 'comlink/dist/esm/node-adapter.mjs';

export async function comlinkEndpoint(port: Worker | MessagePort): Promise<Endpoint> {
  const mod = (await import(ADAPTER)) as { default: (ep: Worker | MessagePort) => Endpoint };
  return mod.default(port);
}

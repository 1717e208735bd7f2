// What the BroadcastChannel fixture's page and worker share: node options, and the actors every
// node of this fixture runs. Host-neutral (page and Web Worker).
import { createNode, type Node } from '../../../core/index.ts';
import {
  broadcastDiscovery,
  createBroadcastChannelTransport,
} from '../../../adapters/broadcast-channel.ts';

export const BC_SECRET = 'bc-browser-fixture-secret';
export const BC_CLUSTER = 'bc-browser-fixture';

/** A node on the BroadcastChannel transport, found by (and finding) the origin's others. */
export function createBcNode(name: string): Node {
  return createNode({
    name,
    secret: BC_SECRET,
    transports: [createBroadcastChannelTransport({ id: name })],
    discovery: broadcastDiscovery({ cluster: BC_CLUSTER, interval: 300 }),
    heartbeatInterval: 500,
    heartbeatTimeout: 6000,
    callTimeout: 10_000,
  });
}

/**
 * Register `echo-<id>` (answers `{ n }` with `{ n, by }`) and `driver-<id>` (answers
 * `{ target, n }` by calling the name `target` with `{ n }` and returning its answer).
 */
export function spawnFixtureActors(node: Node): void {
  node.spawn(
    async (self) => {
      for (;;) {
        const m = (await self.receive()) as { n: number };
        self.reply({ n: m.n, by: node.id });
      }
    },
    { name: `echo-${node.id}` },
  );
  node.spawn(
    async (self) => {
      for (;;) {
        const m = (await self.receive()) as { target: string; n: number };
        try {
          self.reply({ ok: true, value: await node.call(m.target, { n: m.n }, { timeout: 8000 }) });
        } catch (err) {
          self.reply({ ok: false, error: String((err as { code?: string }).code ?? err) });
        }
      }
    },
    { name: `driver-${node.id}` },
  );
}

// The BroadcastChannel fixture page: a node and one Web Worker node, both on the BroadcastChannel
// transport with discovery, driven from Playwright through `window.bcx` (plain JSON in and out).
import type { Node } from '../../../core/index.ts';
import { waitFor } from '../fixtures/behaviours.ts';
import { createBcNode, spawnFixtureActors } from './common.ts';

let node: Node | undefined;
let workerName = '';
const downs: Record<string, string> = {};

function need(): Node {
  if (!node) throw new Error('bcx.start() first');
  return node;
}

const bcx = {
  /** Start this page's node and its worker's node; resolves with both ids. */
  async start(name: string): Promise<{ page: string; worker: string }> {
    node = createBcNode(name);
    spawnFixtureActors(node);
    await node.listen();
    workerName = `${name}-worker`;
    new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: workerName });
    return { page: node.id, worker: workerName };
  },
  peers: (): string[] => need().peers().sort(),
  /** Wait until `ids` are all linked to this page's node. */
  async waitPeers(ids: string[], ms: number): Promise<string[]> {
    const n = need();
    await waitFor(
      `links to ${ids.join(', ')}`,
      () => ids.every((id) => n.peers().includes(id)),
      ms,
    );
    return n.peers().sort();
  },
  /** Wait until the name is known here. */
  async waitName(name: string, ms: number): Promise<void> {
    const n = need();
    await waitFor(`the name ${name}`, () => n.whereis(name) !== undefined, ms);
  },
  /** Ask this page's worker to call the name `target` with `{ n }`; its answer. */
  async workerCall(target: string, n: number): Promise<unknown> {
    await bcx.waitName(`driver-${workerName}`, 10_000);
    return need().call(`driver-${workerName}`, { target, n }, { timeout: 10_000 });
  },
  /** Watch the actor registered as `name`; its DOWN reason appears in `downs()`. */
  watch(name: string): void {
    const n = need();
    const ref = n.whereis(name);
    if (!ref) throw new Error(`no actor registered as ${name}`);
    n.watch(ref, (down) => {
      downs[name] = typeof down.reason === 'string' ? down.reason : JSON.stringify(down.reason);
    });
  },
  downs: (): Record<string, string> => ({ ...downs }),
};

(globalThis as unknown as { bcx: typeof bcx }).bcx = bcx;

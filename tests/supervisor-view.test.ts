// The cluster view's supervision data (demo-web/cluster-probe.ts): supervisors registered as
// `sup:…` are walked with whichChildren, across nodes, into the snapshot the view draws, live:
// restart counts and last exit reasons change as children crash.
import { describe, it, expect } from 'vitest';
import { supervisor, serveSupervision, type ProcessFn } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { ClusterWatcher, supervisionTrees } from '../demo-web/cluster-probe.ts';
import { useNodes, until } from './helpers/nodes.ts';

const worker: ProcessFn<unknown> = async (self) => {
  for (;;) {
    const m = await self.receive();
    if (m === 'crash') throw new Error('crashed on purpose');
    self.reply('ok');
  }
};

describe('supervision trees in the cluster view', () => {
  const node = useNodes();

  it('walks every sup:… supervisor, nested and across nodes, with restarts and last exits', async () => {
    const [a, b] = [node({ name: 'va' }), node({ name: 'vb' })];
    await connectMemory(a, b);
    serveSupervision(b);
    b.define('remote.worker', undefined, worker);
    const inner = supervisor({
      strategy: 'one_for_all',
      intensity: 5,
      children: [{ id: 'w2', start: worker, name: 'w2' }],
    });
    a.spawn(
      supervisor({
        intensity: 5,
        children: [
          { id: 'w1', start: worker },
          { id: 'inner', type: 'supervisor', start: inner },
          { id: 'far', start: { behaviour: 'remote.worker', node: 'vb' } },
        ],
      }),
      { name: 'sup:va' },
    );
    await until(
      () => b.whereis('sup:va') !== undefined && b.whereis('w2') !== undefined,
      'tree up and names replicated',
    );
    const watcher = new ClusterWatcher(b, { self: { kind: 'node' } });
    let snap = await watcher.poll();
    expect(snap.supervisors).toEqual([
      {
        id: 'sup:va',
        kind: 'supervisor',
        node: 'va',
        status: 'running',
        restarts: 0,
        children: [
          { id: 'w1', kind: 'worker', node: 'va', status: 'running', restarts: 0 },
          {
            id: 'inner',
            kind: 'supervisor',
            node: 'va',
            status: 'running',
            restarts: 0,
            children: [
              { id: 'w2', kind: 'worker', node: 'va', status: 'running', restarts: 0, name: 'w2' },
            ],
          },
          { id: 'far', kind: 'worker', node: 'vb', status: 'running', restarts: 0 },
        ],
      },
    ]);
    b.send('w2', 'crash');
    let w2: { restarts: number; lastExit?: string } | undefined;
    for (let i = 0; i < 100; i++) {
      snap = await watcher.poll();
      w2 = snap.supervisors![0].children![1].children![0];
      if (w2.restarts === 1) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(w2).toMatchObject({
      restarts: 1,
      status: 'running',
      lastExit: 'Error: crashed on purpose',
    });
    expect(await supervisionTrees(a)).toEqual(snap.supervisors);
  });
});

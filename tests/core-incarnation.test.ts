// Regression (found by the cluster tests): after a node restarted under the same id, a ref from
// its previous life reached whatever actor of the new life had the same id. Actor ids now start
// at a random base per incarnation, like Erlang's creation number.
import { describe, it, expect } from 'vitest';
import { createNode, TroupeError } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';

describe('refs from a previous life of a node', () => {
  it('reach no actor after the node restarts under the same id', async () => {
    const a = createNode({ name: 'a' });
    const b1 = createNode({ name: 'b' });
    await connectMemory(a, b1);
    const echo = (self: { receive(): Promise<unknown>; reply(v: unknown): boolean }) =>
      (async () => {
        for (;;) self.reply(await self.receive());
      })();
    const old = b1.spawn(async (self) => echo(self));
    const stale = a.ref(old.node, old.id);
    expect(await stale.call('hi')).toBe('hi');
    await b1.shutdown();

    const b2 = createNode({ name: 'b' });
    await connectMemory(a, b2);
    // The new life spawns as many actors as the old one had.
    const fresh = b2.spawn(async (self) => echo(self));
    expect(fresh.id).not.toBe(old.id);
    const err = (await stale.call('hi', { timeout: 2000 }).catch((e) => e)) as TroupeError;
    expect(err).toBeInstanceOf(TroupeError);
    expect(err.code).toBe('NO_ACTOR');
    expect(await a.ref(fresh.node, fresh.id).call('new life')).toBe('new life');
    await Promise.all([a.shutdown(), b2.shutdown()]);
  });
});

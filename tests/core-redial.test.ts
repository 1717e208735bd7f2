// Regression (found by the soak): when only the dialing side noticed its link die and redialed,
// the other side took the new link as a duplicate and kept its monitors of the dialer's actors,
// which then never fired (the dialer had already dropped their other half).
import { describe, it, expect } from 'vitest';
import { createNode, createManualClock, isDown, type Connection } from '../core/index.ts';
import { sidedPair as pair } from './helpers/sided-pair.ts';

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

describe('a link lost on one side only', () => {
  it('the side that did not notice settles its monitors when the peer redials', async () => {
    const clock = createManualClock(); // no heartbeats: only the redial can tell B
    const A = createNode({ name: 'A', clock });
    const B = createNode({ name: 'B', clock });
    const p1 = pair();
    await Promise.all([A.attach(p1.a, true), B.attach(p1.b, false)]);
    const onA = A.spawn(async (self) => {
      await self.receive(() => false);
    });
    const downs: unknown[] = [];
    B.spawn(async (self) => {
      self.monitor(B.ref('A', onA.id));
      for (;;) downs.push(((await self.receive(isDown)) as { reason: unknown }).reason);
    });
    await tick();
    const linkDowns: string[] = [];
    B.events.on('linkDown', (e) => linkDowns.push(e.reason));
    p1.cutA(); // A loses the link; B does not notice
    await tick();
    const p2 = pair();
    await Promise.all([A.attach(p2.a, true), B.attach(p2.b, false)]); // A redials
    await tick();
    expect(B.peers()).toEqual(['A']);
    expect(linkDowns).toEqual(['peer redialed']);
    expect(downs).toEqual(['noconnection']);
    // The new link works: a monitor set up over it fires when the actor dies.
    const again = B.waitDown(B.ref('A', onA.id));
    await tick();
    onA.kill();
    expect((await again).reason).toBe('killed');
    await Promise.all([A.shutdown(), B.shutdown()]);
  });

  it('the side that did not notice settles its monitors when the other side dials back (not the original dialer)', async () => {
    // Regression (the short soak): B accepted the link, lost it alone, and later dialed A
    // itself; A kept the new link as a duplicate and its monitors of B's actors never fired.
    const clock = createManualClock();
    const A = createNode({ name: 'A', clock });
    const B = createNode({ name: 'B', clock });
    const p1 = pair();
    await Promise.all([A.attach(p1.a, true), B.attach(p1.b, false)]);
    const onB = B.spawn(async (self) => {
      await self.receive(() => false);
    });
    const downs: unknown[] = [];
    A.spawn(async (self) => {
      self.monitor(A.ref('B', onB.id));
      for (;;) downs.push(((await self.receive(isDown)) as { reason: unknown }).reason);
    });
    await tick();
    (p1.b as Connection).close(); // only B notices: B settles everything of A
    await tick();
    expect(B.peers()).toEqual([]);
    expect(A.peers()).toEqual(['B']);
    const p2 = pair();
    await Promise.all([B.attach(p2.a, true), A.attach(p2.b, false)]); // B dials A
    await tick();
    expect(downs).toEqual(['noconnection']);
    expect(A.peers()).toEqual(['B']);
    // And the session goes on over the new link.
    const echo = B.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    expect(await A.ref('B', echo.id).call('hi', { timeout: 1000 })).toBe('hi');
    await Promise.all([A.shutdown(), B.shutdown()]);
  });
});

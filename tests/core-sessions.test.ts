// Sessions between nodes that reach each other through a relay (core/session.ts): a loss seen on
// one side only must still settle both sides' monitors, or one of them never fires. Both cases
// were found by the soak (soak/run.ts): a monitor whose target died without a DOWN.
import { describe, it, expect } from 'vitest';
import { createNode, createManualClock, isDown, type ActorRef, type Node } from '../core/index.ts';
import { sidedPair } from './helpers/sided-pair.ts';

const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

/** A node's actor that waits forever, and a watcher on another node recording its DOWN reasons. */
function victimAndWatcher(
  home: Node,
  watcherNode: Node,
): { victim: ActorRef<unknown>; downs: unknown[]; watch: () => void } {
  const victim = home.spawn(async (self) => {
    await self.receive(() => false);
  });
  const downs: unknown[] = [];
  let watcher: ActorRef<string> | undefined;
  watcher = watcherNode.spawn(async (self) => {
    for (;;) {
      const m = await self.receive();
      if (m === 'watch') self.monitor(watcherNode.ref(home.id, victim.id));
      else if (isDown(m)) downs.push(m.reason);
    }
  });
  return { victim, downs, watch: () => watcher!.send('watch') };
}

/** Nodes named `names` on one manual clock (no heartbeats: only the protocol can tell a loss). */
function nodes<const K extends string>(...names: K[]): Record<K, Node> {
  const clock = createManualClock();
  return Object.fromEntries(names.map((name) => [name, createNode({ name, clock })])) as Record<
    K,
    Node
  >;
}

/** After the lost session fired its monitor: a monitor of the new session fires when the victim dies, and the old one never again. */
async function newSessionWorks(
  w: ReturnType<typeof victimAndWatcher>,
  all: Record<string, Node>,
): Promise<void> {
  w.watch();
  await tick();
  w.victim.kill();
  await tick();
  expect(w.downs).toEqual(['noconnection', 'killed']);
  await Promise.all(Object.values(all).map((n) => n.shutdown()));
}

async function link(dialer: Node, acceptor: Node) {
  const p = sidedPair();
  await Promise.all([dialer.attach(p.a, true), acceptor.attach(p.b, false)]);
  return p;
}

describe('sessions through a relay', () => {
  it('a loss seen only by the far side (the relay lost the watcher) still fires the monitor, once', async () => {
    const all = nodes('A', 'B', 'R');
    const { A, B, R } = all;
    await link(A, R);
    const rb = await link(B, R);
    await tick();
    expect(A.isReachable('B')).toBe(true);
    // B watches an actor of A, through R.
    const w = victimAndWatcher(A, B);
    const { downs, watch } = w;
    watch();
    await tick();
    // R loses B (its end only): R tells A, A settles its side (drops B's monitor)...
    rb.cutB();
    await tick();
    expect(A.isReachable('B')).toBe(false);
    expect(B.isReachable('A')).toBe(true); // ...while B saw nothing and still holds the monitor
    expect(downs).toEqual([]);
    // R dials B again; A finds B through R and tells it of the loss: B settles its monitor.
    await link(R, B);
    await tick();
    expect(A.isReachable('B')).toBe(true);
    expect(downs).toEqual(['noconnection']);
    await newSessionWorks(w, all);
  });

  it('a monitor lost with the old route of a route switch fires (noconnection) instead of never', async () => {
    const all = nodes('A', 'B', 'R');
    const { A, B, R } = all;
    await link(A, R);
    const rb = await link(R, B);
    await tick();
    const w = victimAndWatcher(B, A);
    const { downs, watch } = w;
    // What R forwards to B from now on is lost: A's monitor request among it.
    rb.blackhole('a→b');
    watch();
    await tick();
    // A direct link replaces the relayed route; its flush marker goes the old way, and is lost too.
    await link(A, B);
    await tick();
    expect(downs).toEqual([]);
    // R finds B gone: A learns the old route lost B before it was flushed, so the session is lost.
    rb.cutA();
    await tick();
    expect(downs).toEqual(['noconnection']);
    expect(A.isReachable('B')).toBe(true);
    await newSessionWorks(w, all); // over the direct link
  });

  it('a failed route switch of a relay settles the sessions of the nodes routing through it', async () => {
    // A reaches B through R1, R1 reaches B through R2. A's monitor request is lost between R2 and
    // B; R1 then gets a direct link to B, and the old way (through R2) loses B before R1's flush
    // marker passes. A never switched anything, but R1 forwarded A's envelopes the old way: A is
    // told (`sl`) and its monitor fires.
    const all = nodes('A', 'B', 'R1', 'R2');
    const { A, B, R1, R2 } = all;
    await link(A, R1);
    await link(R1, R2);
    const r2b = await link(R2, B);
    await tick(); // A knows no route to B: it sends up its only link (the leaf rule)
    const w = victimAndWatcher(B, A);
    const { downs, watch } = w;
    r2b.blackhole('a→b');
    watch();
    await tick();
    await link(R1, B);
    await tick();
    r2b.cutA();
    await tick();
    expect(downs).toEqual(['noconnection']);
    await newSessionWorks(w, all);
  });

  it('both sides lost the session (a relay restart): the first call and monitor after it work, no false NODE_DOWN', async () => {
    // Found by the relay-restart browser test: A — R — B — W (W a leaf behind B, like a page's
    // worker). R dies: A loses W and W loses A, each on its own. R comes back; A at once calls W
    // and monitors an actor of W. Both sides count one loss: the call and the monitor belong to
    // the new session on both, and must not be settled when the two learn each other's counts.
    const all = nodes('A', 'B', 'W', 'R', 'R2');
    const { A, B, W, R, R2 } = all;
    const ar = await link(A, R);
    const br = await link(B, R);
    await link(B, W);
    const echo = W.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    const toW = A.ref('W', echo.id);
    expect(await toW.call('before', { timeout: 1000 })).toBe('before');
    // R dies: its connections close at both ends.
    for (const p of [ar, br]) {
      p.cutA();
      p.cutB();
    }
    await R.shutdown();
    await tick();
    expect(A.isReachable('W')).toBe(false);
    expect(W.isReachable('A')).toBe(false);
    // The relay's next life (another node here) links both again.
    await link(A, R2);
    await link(B, R2);
    const w = victimAndWatcher(W, A);
    w.watch();
    expect(await toW.call('after', { timeout: 1000 })).toBe('after');
    await tick();
    expect(await toW.call('again', { timeout: 1000 })).toBe('again');
    expect(w.downs).toEqual([]);
    w.victim.kill();
    await tick();
    expect(w.downs).toEqual(['killed']);
    await Promise.all(Object.values(all).map((n) => n.shutdown()));
  });
});

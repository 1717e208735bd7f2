// The name-before-member race on NATS (issue 16): the JetStream KV watch can show a name before
// its node's presence has made that node a member, and a call to a node that is not up fails
// NODE_DOWN at once. A name is held back until its node is up. The order is made deterministic:
// the owner runs without the discovery (it is never heard on the discovery subject) but with the
// KV registry, so its names reach the others while it is no member; a second owner that is a
// member registers after it, and the KV watch is ordered, so once that second name shows, the
// first one has arrived. Real nats-server on 127.0.0.1.
import { KvWatchInclude } from 'nats';
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers/cluster.ts';
import { echoFrom, useNatsNodes } from './helpers/nats-nodes.ts';
import { startNatsServer } from './helpers/nats-server.ts';

const HB = 2000;

describe('NATS registry: a name before its node is up', () => {
  const { servers, nodes, natsNode } = useNatsNodes(HB, { presenceInterval: 300 });
  const echo = echoFrom;

  it('whereis gives no ref to a node that is not up; the name shows once it is, and a call works at once', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const a = natsNode(s.url, 'race-a');
    const hidden = natsNode(s.url, 'race-hidden', { discovery: false }); // never a member of a's discovery
    const c = natsNode(s.url, 'race-c');
    const [, hiddenAddrs] = await Promise.all([
      a.node.listen(),
      hidden.node.listen(),
      c.node.listen(),
    ]);
    await eventually(() => a.node.nodes().includes('race-c'), 'a sees c', 10_000);
    expect(a.node.nodes()).not.toContain('race-hidden');

    hidden.node.register('svc-hidden', echo(hidden.node));
    // Registered after it: once a sees this name, the KV watch has delivered svc-hidden too.
    await eventually(() => hidden.node.whereis('svc-hidden'), 'the owner sees its own name', 5000);
    await new Promise((r) => setTimeout(r, 200)); // the create reached the bucket
    c.node.register('svc-c', echo(c.node));
    await eventually(() => a.node.whereis('svc-c'), 'svc-c on a', 10_000);
    // Before the fix: a ref here, and a.call on it failed NODE_DOWN at once.
    expect(a.node.whereis('svc-hidden')).toBeUndefined();
    expect(a.node.registered().has('svc-hidden')).toBe(false);

    // The node comes up for a (a link here; presence does the same): the name shows, callable.
    const shown: (string | undefined)[] = [];
    a.node.events.on('nodeUp', (e) => {
      if (e.node === 'race-hidden') shown.push(a.node.whereis('svc-hidden')?.node);
    });
    await a.node.connect(hiddenAddrs![0]!);
    expect(shown).toEqual(['race-hidden']); // shown before nodeUp listeners run
    const ref = a.node.whereis('svc-hidden');
    expect(ref?.node).toBe('race-hidden');
    expect(await a.node.call(ref!, 'hi', { timeout: 10_000 })).toEqual({
      from: 'race-hidden',
      m: 'hi',
    });
  }, 60_000);

  it('a name whose node is seen down is hidden again, and a member node shows its names as soon as it is heard', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const a = natsNode(s.url, 'race2-a');
    await a.node.listen();
    // b starts after a: its name and its presence race; whereis must never give a ref that a
    // call fails NODE_DOWN on.
    const b = natsNode(s.url, 'race2-b');
    await b.node.listen();
    b.node.register('svc-b', echo(b.node));
    const ref = await eventually(() => a.node.whereis('svc-b'), 'svc-b on a', 10_000);
    expect(a.node.nodes()).toContain('race2-b');
    expect(await a.node.call(ref, 'x', { timeout: 10_000 })).toEqual({ from: 'race2-b', m: 'x' });
    // b leaves (goodbye): its name goes from a's view with it, whatever the bucket says.
    await b.node.shutdown();
    await eventually(() => !a.node.nodes().includes('race2-b'), 'b left', 10_000);
    expect(a.node.whereis('svc-b')).toBeUndefined();
  }, 60_000);

  it("a node restarted with the same id after a crash gets its names back: its previous life's entries go", async () => {
    const s = await startNatsServer();
    servers.push(s);
    const a = natsNode(s.url, 'again-a');
    const first = natsNode(s.url, 'again-x');
    await Promise.all([a.node.listen(), first.node.listen()]);
    first.node.register('svc-x', echo(first.node));
    const old = await eventually(() => a.node.whereis('svc-x'), 'svc-x on a', 10_000);
    // The crash: its NATS connection goes, no goodbye, no delete of its names. Nothing else runs
    // on the dead node (its shutdown below finds the connection closed).
    await (await first.t.connection()).close();
    await first.node.shutdown().catch(() => {});
    // A new life under the same id, before a has seen the old one down.
    const again = natsNode(s.url, 'again-x');
    await again.node.listen();
    const lost: unknown[] = [];
    const actor = again.node.spawn(async (self) => {
      for (;;) {
        const m = await self.receive();
        if ((m as { type?: string }).type === 'NAME_LOST') lost.push(m);
        else self.reply({ from: 'again', m });
      }
    });
    expect(again.node.register('svc-x', actor)).toBe(true);
    const now = await eventually(
      () => {
        const r = a.node.whereis('svc-x');
        return r && !r.equals(old) ? r : undefined;
      },
      'the new svc-x on a',
      10_000,
    );
    expect(now.equals(actor)).toBe(true);
    expect(await a.node.call(now, 'hi', { timeout: 10_000 })).toEqual({ from: 'again', m: 'hi' });
    expect(again.node.whereis('svc-x')?.equals(actor)).toBe(true);
    expect(lost).toEqual([]);
  }, 60_000);

  it('a node that shuts down leaves no names in the bucket', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const b = natsNode(s.url, 'bye-b');
    await b.node.listen();
    b.node.register('svc-bye', echo(b.node));
    await eventually(() => b.node.whereis('svc-bye'), 'own name', 5000);
    await new Promise((r) => setTimeout(r, 300)); // the create reached the bucket
    await b.node.shutdown();
    // A node started afterwards reads the bucket from scratch: nothing is left of b.
    const c = natsNode(s.url, 'bye-c');
    await c.node.listen();
    const reg = c.t.registry();
    await reg.ready;
    await new Promise((r) => setTimeout(r, 300));
    expect(c.node.registered().size).toBe(0);
    const nc = await c.t.connection();
    const kv = await nc.jetstream().views.kv('troupe_registry');
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys).toEqual([]);
  }, 60_000);

  it('names of a live node deleted by others (who saw it down) are claimed again by their owner', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const a = natsNode(s.url, 'back-a');
    const b = natsNode(s.url, 'back-b');
    await Promise.all([a.node.listen(), b.node.listen()]);
    const actor = echo(b.node);
    b.node.register('svc-back', actor);
    await eventually(() => a.node.whereis('svc-back'), 'svc-back on a', 10_000);
    const kv = await (await a.t.connection()).jetstream().views.kv('troupe_registry');
    const ops: string[] = [];
    const w = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of w) ops.push(e.operation);
    })();
    // What a node that saw b down does: the revision-checked delete of b's names.
    await a.t.registry().release('svc-back', 'back-b', actor.id);
    await eventually(
      () => ops.join() === 'DEL,PUT',
      'the delete, then the owner claims it again',
      5000,
    );
    w.stop();
    const ref = await eventually(() => a.node.whereis('svc-back'), 'svc-back back on a', 5000);
    expect(ref.equals(actor)).toBe(true);
    expect(b.node.whereis('svc-back')?.equals(actor)).toBe(true);
    expect(await a.node.call(ref, 'again', { timeout: 10_000 })).toEqual({
      from: 'back-b',
      m: 'again',
    });
  }, 60_000);
});

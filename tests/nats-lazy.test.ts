// Lazy links on NATS (issue 16, scale): members come from presence on the discovery subject and a
// link is dialed only for a pair that talks. Real nats-server processes on 127.0.0.1, real child
// processes killed with SIGKILL. Also: a slow consumer, cut by a real server with tiny pending
// limits, becomes a `slowConsumer` event.
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { type Node } from '../core/index.ts';
import { eventually, useCluster, type ChildNode } from './helpers/cluster.ts';
import { echoFrom, useNatsNodes } from './helpers/nats-nodes.ts';
import { startNatsServer } from './helpers/nats-server.ts';

const FIXTURE = 'tests/fixtures/nats-node.ts';
const HB = 2000;

describe('lazy links on NATS', () => {
  const cluster = useCluster();
  const { servers, nodes, natsNode } = useNatsNodes(HB, { presenceInterval: 300 });
  const echo = echoFrom;

  it('ten nodes: every member seen, names visible everywhere, links only for the pairs that talked', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const all = Array.from({ length: 10 }, (_, i) => natsNode(s.url, `lz${i}`));
    await Promise.all(all.map((x) => x.node.listen()));
    await eventually(
      () => all.every((x) => x.node.nodes().length === 9),
      'every node sees the nine others',
      15_000,
    );
    for (const x of all) {
      expect(x.node.nodes().sort()).toEqual(
        all
          .map((y) => y.node.id)
          .filter((id) => id !== x.node.id)
          .sort(),
      );
      expect(x.t.members().size).toBe(9);
    }
    for (const [i, x] of all.entries()) x.node.register(`svc-${i}`, echo(x.node));
    // The registry is JetStream KV: whereis works everywhere before any link exists.
    await eventually(
      () => all.every((x) => all.every((_, i) => x.node.whereis(`svc-${i}`))),
      'every name visible on every node',
      15_000,
    );
    expect(all.map((x) => x.node.peers().length)).toEqual(Array(10).fill(0));

    // Node 0 calls node 3 (first use dials a link); node 5 monitors an actor on node 7.
    const [n0, n3, n5, n7] = [all[0]!.node, all[3]!.node, all[5]!.node, all[7]!.node];
    expect(await n0.call(n0.whereis('svc-3')!, 'hi', { timeout: 10_000 })).toEqual({
      from: 'lz3',
      m: 'hi',
    });
    const target = n7.whereis('svc-7')!;
    const got: unknown[] = [];
    n5.spawn(async (self) => {
      self.monitor(n5.whereis('svc-7')!);
      for (;;) got.push(await self.receive());
    });
    await eventually(
      () => n5.peers().includes('lz7') && n7.peers().includes('lz5'),
      'lz5 linked to lz7 by its monitor',
      10_000,
    );
    const linked = Object.fromEntries(all.map((x) => [x.node.id, x.node.peers().sort()]));
    expect(linked).toEqual({
      lz0: ['lz3'],
      lz1: [],
      lz2: [],
      lz3: ['lz0'],
      lz4: [],
      lz5: ['lz7'],
      lz6: [],
      lz7: ['lz5'],
      lz8: [],
      lz9: [],
    });
    // A call to a member with a held first envelope and a reply both ways works the other way too.
    expect(await n3.call(all[0]!.node.whereis('svc-0')!, 'back', { timeout: 10_000 })).toEqual({
      from: 'lz0',
      m: 'back',
    });
    expect(target.node).toBe('lz7');
    // The monitor holds: its actor is alive, no DOWN.
    expect(got.filter((m) => (m as { type?: string }).type === 'DOWN')).toEqual([]);
  }, 60_000);

  it('first use of a member that died fails fast: the dial gets no responders, the call NODE_DOWN, the member goes', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const a = natsNode(s.url, 'fu-a', { registry: false });
    const b = natsNode(s.url, 'fu-b', { registry: false });
    await Promise.all([a.node.listen(), b.node.listen()]);
    await eventually(() => a.node.nodes().includes('fu-b'), 'a sees b', 10_000);
    const target = echo(b.node);
    const downs: string[] = [];
    a.node.events.on('nodeDown', (e) => downs.push(`${e.node} ${e.reason}`));
    // b's connection goes without a goodbye (as if killed); a has no link to it yet.
    await (await b.t.connection()).close();
    const t0 = Date.now();
    const err = await a.node.call(target, 'x', { timeout: 10_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NODE_DOWN' });
    expect(Date.now() - t0).toBeLessThan(3000);
    await eventually(() => !a.node.nodes().includes('fu-b'), 'b is no member any more', 5000);
    expect(downs).toEqual(['fu-b noconnection']);
    expect(a.node.peers()).toEqual([]);
  }, 60_000);

  it('SIGKILL with lazy links: DOWN noconnection once for the watcher, every member sees the node leave, its names go', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const child = (name: string): Promise<ChildNode> =>
      cluster.script(name, FIXTURE, [
        '--name',
        name,
        '--servers',
        s.url,
        '--heartbeat-timeout',
        String(HB),
        '--lazy',
      ]);
    const kids = await Promise.all(['k1', 'k2', 'k3', 'k4'].map(child));
    const { node: me } = natsNode(s.url, 'window');
    const downs: string[] = [];
    me.events.on('nodeDown', (e) => downs.push(`${e.node} ${e.reason}`));
    await me.listen();
    await eventually(() => me.nodes().length === 4, 'the window sees the four processes', 15_000);
    for (const k of kids) await k.waitForLine(/^members 4$/, 'four members', 15_000);
    const victim = await eventually(() => me.whereis('svc-k1'), 'svc-k1 visible', 10_000);
    expect(me.peers()).toEqual([]);

    const got: unknown[] = [];
    const nodeEvents: string[] = [];
    me.monitorNode('k1', (e) => nodeEvents.push(`${e.up} ${e.reason ?? ''}`));
    me.spawn(async (self) => {
      self.monitor(victim);
      for (;;) got.push(await self.receive());
    });
    // The monitor is in place once a call after it has been answered (same pair, same order).
    expect(await me.call(victim, 'x', { timeout: 10_000 })).toEqual({ from: 'k1', m: 'x' });
    expect(me.peers()).toEqual(['k1']);
    const marks = kids.map((k) => k.mark());

    await kids[0]!.kill('SIGKILL');
    const t0 = Date.now();
    await eventually(() => got.length > 0, 'DOWN for the monitor', HB + 3000);
    const after = Date.now() - t0;
    expect(after).toBeLessThan(HB + 1500);
    expect(got[0]).toMatchObject({ type: 'DOWN', reason: 'noconnection' });
    // Members that never linked to k1 see it leave through presence alone.
    for (const [i, k] of kids.entries()) {
      if (i === 0) continue;
      await k.waitForLine(
        /^nodeDown k1 noconnection$/,
        `${k.name} sees k1 leave`,
        HB + 3000,
        marks[i],
      );
      await k.waitForLine(/^members 3$/, `${k.name} counts three members`, 2000, marks[i]);
    }
    await eventually(() => !me.whereis('svc-k1'), 'svc-k1 removed', 5000);
    await new Promise((r) => setTimeout(r, HB));
    expect(got).toHaveLength(1);
    expect(downs.filter((d) => d.startsWith('k1 '))).toEqual(['k1 noconnection']);
    expect(nodeEvents).toEqual(['false noconnection']);
    expect(me.nodes().sort()).toEqual(['k2', 'k3', 'k4']);
    // Nobody else was declared down.
    expect(downs).toEqual(['k1 noconnection']);
    for (const [i, k] of kids.entries())
      if (i !== 0) expect(k.matching(/^nodeDown /, marks[i])).toEqual(['nodeDown k1 noconnection']);
  }, 60_000);

  it('a slow consumer cut by the server (tiny max_pending) becomes a slowConsumer event', async () => {
    const s = await startNatsServer({ config: 'max_pending: 65536\nmax_payload: 32768\n' });
    servers.push(s);
    expect(s.monitorUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const kid = await cluster.script('slow', FIXTURE, [
      '--name',
      'slow',
      '--servers',
      s.url,
      '--lazy',
      '--no-registry',
      '--monitor-url',
      s.monitorUrl!,
    ]);
    const subject = /nats:(\S+)/.exec(kid.output())![1]!;
    const from = kid.mark();
    // The node's process reads nothing while frozen; a flood to its subject (8 KiB messages)
    // fills the kernel's buffers, then the server's pending bytes pass max_pending: it cuts it.
    kid.freeze();
    const nc = await connect({ servers: s.url });
    try {
      const buf = new Uint8Array(8192);
      const end = Date.now() + 20_000;
      for (let i = 0; i < 6000 && Date.now() < end; i++) {
        nc.publish(subject, buf);
        if (i % 100 === 99) await nc.flush();
      }
      await nc.flush();
    } finally {
      kid.thaw();
      await nc.close();
    }
    const line = await kid.waitForLine(/^slowConsumer /, 'a slowConsumer event', 15_000, from);
    expect(line).toMatch(/Slow Consumer/);
    expect(kid.matching(/^nats disconnect$/, from)).toHaveLength(1);
  }, 60_000);
});

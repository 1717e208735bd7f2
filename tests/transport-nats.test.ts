// The shared transport contract over NATS (a real nats-server on 127.0.0.1), then what is
// particular to it: fail-fast dials (no responders → NODE_DOWN), frames above max_payload
// chunked, a stranger's frames refused by the handshake, nodes finding each other with only the
// NATS URL, and the JetStream KV registry (a race for one name, removal on exit).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { createNode, TroupeError, type Node } from '../core/index.ts';
import { createNatsTransport, type NatsTransport } from '../adapters/nats.ts';
import { runTransportContract } from './transport-contract.ts';
import { dialPair, useCleanups } from './helpers/transport.ts';
import { startNatsServer, type NatsServer } from './helpers/nats-server.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWebSocketTransport } from '../adapters/websocket.ts';
import { createWebSocketServerTransport } from '../adapters/websocket-server.ts';
import { StandardWebSocket } from './fixtures/websocket-pair.ts';
import { until } from './helpers/nodes.ts';

let server: NatsServer;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.kill();
});

runTransportContract('nats', async () => {
  const pair = await dialPair(
    createNatsTransport({ servers: server.url }),
    createNatsTransport({ servers: server.url }),
  );
  return { a: pair.a, b: pair.b, cleanup: pair.cleanup };
});

describe('nats adapter', () => {
  const { cleanups, track } = useCleanups();
  const transport = (o: Parameters<typeof createNatsTransport>[0] = {}): NatsTransport =>
    track(createNatsTransport({ servers: server.url, links: 'eager', ...o }));
  const natsNode = (
    name: string,
    extra: { registry?: boolean; secret?: string; maxFrameSize?: number } = {},
  ): { node: Node; t: NatsTransport } => {
    const t = transport();
    const node = createNode({
      name,
      secret: extra.secret ?? 's3cret',
      transports: [t],
      discovery: t.discovery,
      registry: extra.registry ? t.registry() : undefined,
      heartbeatInterval: 200,
      heartbeatTimeout: 1500,
      maxFrameSize: extra.maxFrameSize,
    });
    cleanups.push(() => node.shutdown());
    return { node, t };
  };

  it('addresses are nats:<one subject per node>, and only nats: addresses are dialed', async () => {
    const t = transport();
    const [addr] = await t.listen!(() => {});
    expect(addr).toBe(`nats:${t.subject}`);
    expect(t.subject).toMatch(/^troupe\.node\.[0-9a-f]{16}$/);
    expect([
      t.canConnect(addr!),
      t.canConnect('tcp://127.0.0.1:1'),
      t.canConnect('nats:a b'),
      t.canConnect('nats:a.>'),
    ]).toEqual([true, false, false, false]);
  });

  it('a dial to a subject nobody serves fails at once with NODE_DOWN (NATS no responders)', async () => {
    const t = transport();
    const t0 = Date.now();
    const err = await t.connect('nats:troupe.node.nobody').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('NODE_DOWN');
    expect(Date.now() - t0).toBeLessThan(2000);
    const { node } = natsNode('lonely');
    const e2 = await node.connect('nats:troupe.node.nobody').catch((e: unknown) => e);
    expect((e2 as TroupeError).code).toBe('NODE_DOWN');
  });

  it('a 4 MB message crosses as chunks of at most max_payload and arrives intact', async () => {
    const a = natsNode('big-a', { maxFrameSize: 12 * 1024 * 1024 });
    const b = natsNode('big-b', { maxFrameSize: 12 * 1024 * 1024 });
    await Promise.all([a.node.listen(), b.node.listen()]);
    await until(() => a.node.peers().includes('big-b'), 'discovery', 10_000);
    const big = 'x'.repeat(4 * 1024 * 1024) + 'é漢😀';
    const echo = b.node.spawn<{ s: string }>(async (self) => {
      for (;;) {
        const m = (await self.receive()) as { s: string };
        self.reply(m.s.length);
      }
    });
    expect(await a.node.call(echo, { s: big }, { timeout: 20_000 })).toBe(big.length);
  });

  it('the cluster secret still decides: a node with another secret never links', async () => {
    const good = natsNode('good');
    const bad = natsNode('bad', { secret: 'wrong' });
    const errors: string[] = [];
    good.node.events.on('protocolError', (e) => errors.push(e.error.code));
    bad.node.events.on('protocolError', (e) => errors.push(e.error.code));
    await Promise.all([good.node.listen(), bad.node.listen()]);
    await until(() => errors.includes('UNAUTHORIZED'), 'a refused handshake', 10_000);
    expect(good.node.peers()).not.toContain('bad');
  });

  it('nodes find each other with only the NATS URL; SIGKILL-like loss (connection gone) gives DOWN noconnection once', async () => {
    const a = natsNode('d-a');
    const b = natsNode('d-b');
    const c = natsNode('d-c');
    await Promise.all([a.node.listen(), b.node.listen(), c.node.listen()]);
    await until(() => [a, b, c].every((x) => x.node.peers().length === 2), 'all see all', 10_000);
    const target = c.node.spawn(async (self) => {
      await self.receive(() => false);
    });
    const downs: unknown[] = [];
    a.node.spawn(async (self) => {
      self.monitor(target);
      for (;;) downs.push(await self.receive());
    });
    // Cut c's NATS connection without a goodbye (no close frames reach anyone).
    const nc = await c.t.connection();
    await nc.close();
    const t0 = Date.now();
    await until(() => downs.length > 0, 'DOWN', 5000);
    expect(Date.now() - t0).toBeLessThan(4000);
    await new Promise((r) => setTimeout(r, 500));
    expect(downs).toHaveLength(1);
    expect(downs[0]).toMatchObject({ type: 'DOWN', reason: 'noconnection' });
  });

  it('registry on JetStream KV: a race for one name has one winner everywhere; the loser is told; exit frees it', async () => {
    const xs = ['r-a', 'r-b', 'r-c'].map((n) => natsNode(n, { registry: true }));
    await Promise.all(xs.map((x) => x.node.listen()));
    await Promise.all(xs.map((x) => x.t.registry().ready));
    const lost: string[] = [];
    const refs = xs.map((x) =>
      x.node.spawn(async (self) => {
        for (;;) {
          const m = (await self.receive()) as { type?: string };
          if (m.type === 'NAME_LOST') lost.push(x.node.id);
        }
      }),
    );
    // All three claim at once; each answers true locally (the API is unchanged) ...
    expect(xs.map((x, i) => x.node.register('leader', refs[i]!))).toEqual([true, true, true]);
    // ... and the KV create decides: one owner, seen by all, the two others told.
    await until(() => lost.length === 2, 'two NAME_LOST', 10_000);
    await until(
      () =>
        new Set(xs.map((x) => x.node.whereis('leader')?.node)).size === 1 &&
        xs[0]!.node.whereis('leader') !== undefined,
      'one owner everywhere',
      10_000,
    );
    const owner = xs[0]!.node.whereis('leader')!;
    expect(lost).not.toContain(owner.node);
    const ownerNode = xs.find((x) => x.node.id === owner.node)!.node;
    ownerNode.kill(owner);
    await until(
      () => xs.every((x) => x.node.whereis('leader') === undefined),
      'name gone everywhere',
      10_000,
    );
    // Free again: the next claim wins at once.
    const other = xs.find((x) => x.node !== ownerNode)!;
    const r = other.node.spawn(async (self) => {
      await self.receive(() => false);
    });
    expect(other.node.register('leader', r)).toBe(true);
    await until(
      () => xs.every((x) => x.node.whereis('leader')?.equals(r)),
      'new owner everywhere',
      10_000,
    );
    expect(lost).toHaveLength(2);
  });

  it('mixed: a pair with a direct TCP link uses it, NATS links the rest', async () => {
    const mk = (name: string): Node => {
      const t = transport();
      const node = createNode({
        name,
        secret: 's3cret',
        transports: [createTcpTransport({ listen: '127.0.0.1:0' }), t],
        discovery: t.discovery,
      });
      cleanups.push(() => node.shutdown());
      return node;
    };
    const a = mk('mx-a');
    const b = mk('mx-b');
    const c = natsNode('mx-c').node;
    const [, bAddrs] = await Promise.all([a.listen(), b.listen(), c.listen()]);
    expect(await a.connect(bAddrs.find((x) => x.startsWith('tcp://'))!)).toBe('mx-b');
    await until(
      () => [a, b].every((n) => n.peers().length === 2) && c.peers().length === 2,
      'everyone linked',
      10_000,
    );
    const label = (n: Node, peer: string) => n.linkStats().find((l) => l.node === peer)!.label;
    expect(label(a, 'mx-b')).toMatch(/^tcp:|127\.0\.0\.1/);
    expect(label(a, 'mx-c')).toMatch(/^nats:/);
    const echo = c.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    expect(await a.call(echo, 'via nats')).toBe('via nats');
  });

  it('a relay on NATS lets a page behind its WebSocket reach a NATS-only node', async () => {
    const t = transport();
    const relay = createNode({
      name: 'relay',
      secret: 's3cret',
      transports: [createWebSocketServerTransport({ listen: '127.0.0.1:0' }), t],
      discovery: t.discovery,
    });
    cleanups.push(() => relay.shutdown());
    const [wsAddr] = await relay.listen();
    const far = natsNode('far').node;
    await far.listen();
    await until(() => relay.peers().includes('far'), 'relay and far linked over NATS', 10_000);
    const svc = far.spawn(async (self) => {
      for (;;) self.reply({ at: 'far', got: await self.receive() });
    });
    far.register('far-svc', svc);
    const page = createNode({
      name: 'page',
      secret: 's3cret',
      transports: [createWebSocketTransport({ WebSocket: StandardWebSocket })],
    });
    cleanups.push(() => page.shutdown());
    expect(await page.connect(wsAddr!)).toBe('relay');
    const ref = await (async () => {
      for (let i = 0; i < 200; i++) {
        const r = page.whereis('far-svc');
        if (r) return r;
        await new Promise((res) => setTimeout(res, 25));
      }
      throw new Error('far-svc never visible from the page');
    })();
    expect(await page.call(ref, 'hi from the page')).toEqual({
      at: 'far',
      got: 'hi from the page',
    });
  });

  it('a malformed message on a node subject is dropped with an event, never a crash', async () => {
    const t = transport();
    const bad: string[] = [];
    t.events.on('badMessage', (e) => bad.push(e.reason));
    await t.listen!(() => {});
    const nc = await connect({ servers: server.url });
    nc.publish(t.subject, new TextEncoder().encode('no header'));
    nc.publish(t.subject, new TextEncoder().encode('z 1 2\nbody'));
    nc.publish(t.subject, new TextEncoder().encode('o c1\n'));
    await nc.flush();
    await until(() => bad.length === 3, 'three badMessage events', 5000);
    await nc.close();
  });
});

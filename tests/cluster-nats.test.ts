// Node processes on NATS (real nats-server processes on 127.0.0.1, real child processes killed
// with real signals): three nodes find each other with only the NATS URL, register/whereis/call
// across processes over the JetStream KV registry, a SIGKILLed node gives DOWN noconnection
// within the heartbeat timeout exactly once and its names go; and a three-server NATS cluster
// losing one server: the nodes on it move to another, calls resume, no monitor fires twice.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type ActorRef, type Node } from '../core/index.ts';
import { createNatsTransport } from '../adapters/nats.ts';
import { eventually, SECRET, useCluster, type ChildNode } from './helpers/cluster.ts';
import { startNatsServer, type NatsServer } from './helpers/nats-server.ts';

const FIXTURE = 'tests/fixtures/nats-node.ts';
const HB = 2000;

describe('troupe on NATS, across processes', () => {
  const cluster = useCluster();
  const servers: NatsServer[] = [];
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.shutdown().catch(() => {})));
    await Promise.all(servers.splice(0).map((s) => s.kill()));
  });

  const natsNode = (urls: string[], registry = true): Node => {
    const t = createNatsTransport({
      servers: urls,
      connectOptions: { noRandomize: true },
      links: 'eager',
    });
    const node = createNode({
      name: 'window',
      secret: SECRET,
      transports: [t],
      discovery: t.discovery,
      registry: registry ? t.registry() : undefined,
      heartbeatInterval: HB / 5,
      heartbeatTimeout: HB,
    });
    nodes.push(node);
    return node;
  };
  const child = (name: string, urls: string[], extra: string[] = []): Promise<ChildNode> =>
    cluster.script(name, FIXTURE, [
      '--name',
      name,
      '--servers',
      urls.join(','),
      '--heartbeat-timeout',
      String(HB),
      ...extra,
    ]);

  /** An actor on `node` monitoring `target`; every message it gets is pushed on the array. */
  const watcher = (node: Node, target: ActorRef): unknown[] => {
    const got: unknown[] = [];
    node.spawn(async (self) => {
      self.monitor(target);
      for (;;) got.push(await self.receive());
    });
    return got;
  };

  it('three node processes: register, whereis, call, monitors; SIGKILL gives DOWN noconnection within the timeout, once', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const kids = await Promise.all(['p1', 'p2', 'p3'].map((n) => child(n, [s.url])));
    const me = natsNode([s.url]);
    await me.listen();
    await eventually(() => me.peers().length === 3, 'the window sees the three processes', 15_000);
    for (const k of kids) await k.waitForLine(/^peers 3$/, 'three peers', 15_000);
    const refs = await eventually(
      () => {
        const r = kids.map((k) => me.whereis(`svc-${k.name}`));
        return r.every(Boolean) ? (r as ActorRef[]) : undefined;
      },
      'the three names',
      10_000,
    );
    for (const [i, r] of refs.entries()) {
      expect(await me.call(r, `hello ${i}`, { timeout: 5000 })).toEqual({
        from: kids[i]!.id,
        m: `hello ${i}`,
      });
    }
    const downs = watcher(me, refs[2]!);
    const others = watcher(me, refs[0]!);
    const m1 = kids[0]!.mark();
    const t0 = Date.now();
    await kids[2]!.kill('SIGKILL');
    await eventually(() => downs.length > 0, 'DOWN for the killed node', HB * 3);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(HB * 2);
    expect(downs[0]).toMatchObject({ type: 'DOWN', reason: 'noconnection' });
    await kids[0]!.waitForLine(/^nodeDown p3 /, 'p1 sees p3 down', HB * 3, m1);
    // A call to the dead node fails at once (no route, no link), not at its timeout.
    const c0 = Date.now();
    const err = await me
      .call(refs[2]!, 'anyone?', { timeout: 8000 })
      .catch((e: { code?: string }) => e);
    expect((err as { code: string }).code).toBe('NODE_DOWN');
    expect(Date.now() - c0).toBeLessThan(2000);
    await eventually(
      () => me.whereis('svc-p3') === undefined,
      'the dead node’s name removed',
      5000,
    );
    await new Promise((r) => setTimeout(r, HB));
    expect(downs).toHaveLength(1);
    expect(others).toHaveLength(0);
    expect(kids[0]!.matching(/^nodeDown p3 /, m1)).toHaveLength(1);
    // The survivors still serve.
    expect(await me.call(refs[1]!, 'still', { timeout: 5000 })).toEqual({ from: 'p2', m: 'still' });
  });

  it('SIGSTOP: a frozen node (its NATS subscription still there) is declared down by the heartbeat timeout, once', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const frozen = await child('f1', [s.url], ['--no-registry']);
    const me = natsNode([s.url], false);
    await me.listen();
    await eventually(() => me.peers().includes('f1'), 'linked to f1', 15_000);
    const ref = await eventually(() => me.whereis('svc-f1'), 'svc-f1', 10_000);
    const downs = watcher(me, ref);
    await eventually(
      () =>
        me.call(ref, 'up?', { timeout: 2000 }).then(
          () => true,
          () => undefined,
        ),
      'a first call',
      10_000,
    );
    const t0 = Date.now();
    frozen.freeze();
    await eventually(() => downs.length > 0, 'DOWN for the frozen node', HB * 4);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(HB * 0.8);
    expect(took).toBeLessThan(HB * 3);
    expect(downs[0]).toMatchObject({ type: 'DOWN', reason: 'noconnection' });
    frozen.thaw();
    await new Promise((r) => setTimeout(r, HB));
    expect(downs).toHaveLength(1);
  });

  it('a three-server NATS cluster loses one server: its nodes move, calls resume, no monitor fires twice', async () => {
    const s1 = await startNatsServer({ cluster: true, name: 's1' });
    servers.push(s1);
    const s2 = await startNatsServer({ routes: [s1.routeUrl!], name: 's2' });
    servers.push(s2);
    const s3 = await startNatsServer({ routes: [s1.routeUrl!, s2.routeUrl!], name: 's3' });
    servers.push(s3);
    const urls = [s1, s2, s3].map((s) => s.url);
    // Each process prefers another server (noRandomize keeps the order): p1 is on s1.
    const kids = await Promise.all([
      child('q1', [s1.url, s2.url, s3.url], ['--no-registry']),
      child('q2', [s2.url, s3.url, s1.url], ['--no-registry']),
      child('q3', [s3.url, s1.url, s2.url], ['--no-registry']),
    ]);
    const me = natsNode([s2.url, s3.url, s1.url], false);
    await me.listen();
    await eventually(
      () => me.peers().length === 3,
      'the window sees the three processes (routes between servers)',
      20_000,
    );
    // No KV registry here (JetStream would need its own cluster): names gossip on the links.
    const refs = await eventually(
      () => {
        const r = kids.map((k) => me.whereis(`svc-${k.name}`));
        return r.every(Boolean) ? (r as ActorRef[]) : undefined;
      },
      'the three names',
      10_000,
    );
    const downs = refs.map((r) => watcher(me, r));
    for (const [i, r] of refs.entries())
      expect(await me.call(r, i, { timeout: 5000 })).toEqual({ from: kids[i]!.id, m: i });
    const q1 = kids[0]!;
    const m = q1.mark();
    await s1.kill();
    await q1.waitForLine(/^nats reconnect /, 'q1 reconnected to another server', 20_000, m);
    // Calls to every process resume (to q1 as soon as it is linked again, maybe on a new link).
    for (const [i, r] of refs.entries()) {
      await eventually(
        () =>
          me.call(r, `again ${i}`, { timeout: 2000 }).then(
            (v) => v,
            () => undefined,
          ),
        `a call to ${kids[i]!.name} after the server loss`,
        20_000,
        200,
      );
    }
    await new Promise((r) => setTimeout(r, HB * 1.5));
    // A monitor fires at most once (q1's link may have lost frames on the dead server: then its
    // monitor fired once with noconnection); q2 and q3 never lost their server.
    expect(downs[0]!.length).toBeLessThanOrEqual(1);
    for (const d of downs[0]!) expect(d).toMatchObject({ type: 'DOWN', reason: 'noconnection' });
    expect(downs[1]).toHaveLength(0);
    expect(downs[2]).toHaveLength(0);
    expect(urls).toHaveLength(3);
  });
});

// Issue 11, item 5 — a relay that drops a sender's messages (its link onward is congested, or it
// has no route) tells the sending node, rate-limited; the sender raises a dead-letter event with
// the count. Three nodes over TCP: sender → relay → target, the relay's link to the target
// through a proxy that stops moving bytes.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { until } from './helpers/nodes.ts';

const SECRET = 'security-relay-drops';
const nodes: Node[] = [];
const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

function node(name: string, extra: Record<string, unknown> = {}): Node {
  const n = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    autoConnect: false,
    heartbeatTimeout: 20_000,
    ...extra,
  });
  nodes.push(n);
  return n;
}

describe('drops at a relay reach the sender', () => {
  it('overflow at the relay: the sender gets dead letters whose counts add up to what the relay dropped, a few reports, not one per message', async () => {
    const relay = node('drop-relay', { highWaterMark: 16 * 1024, maxLinkQueue: 64 * 1024 });
    const target = node('drop-target');
    const sender = node('drop-sender');
    const [relayAddr] = await relay.listen();
    const [targetAddr] = await target.listen();
    const proxy = await createFaultProxy(targetAddr.replace('tcp://', ''));
    proxies.push(proxy);
    await relay.connect(proxy.address);
    await sender.connect(relayAddr);
    const sink = target.spawn(async (self) => {
      for (;;) await self.receive();
    });
    await until(
      () => sender.isReachable('drop-target'),
      'the target reachable from the sender through the relay',
      5000,
    );

    let relayDropped = 0;
    relay.events.on('deadLetter', (e) => {
      if (e.reason === 'overflow') relayDropped++;
    });
    const reports: { to: string; reason: string; count?: number }[] = [];
    sender.events.on('deadLetter', (e) =>
      reports.push({ to: e.to, reason: e.reason, count: e.count }),
    );

    // The relay's onward link stalls: its queue fills, then it drops.
    proxy.cut('blackhole');
    const ref = sender.ref(sink.node, sink.id);
    const SENT = 20_000;
    const t0 = Date.now();
    for (let i = 0; i < SENT; i += 500) {
      for (let j = i; j < i + 500; j++) ref.send({ seq: j, pad: 'p'.repeat(100) });
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(
      () => relayDropped > 0 && reports.reduce((s, r) => s + (r.count ?? 0), 0) === relayDropped,
      'the sender to hear of every drop',
      10_000,
    );
    await new Promise((r) => setTimeout(r, 600)); // no late reports beyond the count
    const elapsed = Date.now() - t0;
    const total = reports.reduce((s, r) => s + (r.count ?? 0), 0);
    console.log(
      `relay drops: sent ${SENT}, relay dropped ${relayDropped}, sender got ${reports.length} dead-letter reports adding up to ${total} in ${elapsed} ms`,
    );
    expect(relayDropped).toBeGreaterThan(1000);
    expect(total).toBe(relayDropped);
    expect(
      reports.every((r) => r.to === 'drop-target' && r.reason === 'overflow' && (r.count ?? 0) > 0),
    ).toBe(true);
    // Rate-limited: at most one report per 250 ms (and a last one).
    expect(reports.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2);
  }, 30_000);

  it('unreachable at the relay: a target that left and a node that never existed; the sender (a leaf) gets dead letters whose counts add up to what the relay dropped, rate-limited', async () => {
    const relay = node('unr-relay', { heartbeatTimeout: 1000 });
    const target = node('unr-target', { heartbeatTimeout: 1000 });
    // A leaf (one link, like a page behind its relay): what it has no route for goes up that link.
    const sender = node('unr-sender', { heartbeatTimeout: 1000 });
    const [relayAddr] = await relay.listen();
    await target.connect(relayAddr);
    await sender.connect(relayAddr);
    let received = 0;
    const sink = target.spawn(async (self) => {
      for (;;) {
        await self.receive();
        received++;
      }
    });
    await until(() => sender.isReachable('unr-target'), 'the target at the sender', 5000);
    const ref = sender.ref(sink.node, sink.id);
    const ghost = sender.ref('unr-ghost', 7);

    let relayDropped = 0;
    relay.events.on('deadLetter', (e) => {
      if (e.reason === 'unreachable') relayDropped += e.count ?? 1;
    });
    let local = 0;
    const reports: { to: string; reason: string; count?: number }[] = [];
    sender.events.on('deadLetter', (e) => {
      if (e.count === undefined) local++;
      else reports.push({ to: e.to, reason: e.reason, count: e.count });
    });

    // Before: the target receives.
    for (let i = 0; i < 100; i++) ref.send(i);
    await until(() => received === 100, 'the first 100 at the target', 5000);
    // The target leaves; the relay sees it gone. The sender keeps sending to it and to a ghost.
    await target.shutdown();
    await until(() => !relay.isReachable('unr-target'), 'the relay to lose the target', 5000);
    const SENT = 5000;
    const t0 = Date.now();
    for (let i = 0; i < SENT; i += 250) {
      for (let j = i; j < i + 250; j++) {
        ref.send(j);
        ghost.send(j);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const sum = () => reports.reduce((s, r) => s + (r.count ?? 0), 0);
    await until(
      () => relayDropped > 0 && local + sum() === 2 * SENT,
      'every message to be a dead letter at the sender, most of them reported by the relay',
      10_000,
    );
    await new Promise((r) => setTimeout(r, 600)); // no late reports beyond the count
    const elapsed = Date.now() - t0;
    console.log(
      `relay unreachable: sent ${2 * SENT} to a gone target and a ghost; relay dropped ${relayDropped}, sender got ${reports.length} reports adding up to ${sum()} (+ ${local} dead letters of its own) in ${elapsed} ms`,
    );
    expect(sum()).toBe(relayDropped);
    expect(local + sum()).toBe(2 * SENT);
    expect(relayDropped).toBeGreaterThanOrEqual(SENT); // at least every message to the ghost
    expect(reports.every((r) => r.reason === 'unreachable' && (r.count ?? 0) > 0)).toBe(true);
    expect(new Set(reports.map((r) => r.to))).toContain('unr-ghost');
    // Rate-limited: at most one report per target every 250 ms (and a last one each).
    expect(reports.length).toBeLessThanOrEqual(2 * (Math.ceil(elapsed / 250) + 2));
    expect(sender.peers()).toEqual(['unr-relay']);
  }, 30_000);
});

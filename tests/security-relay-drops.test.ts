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
});

// Issue 6 — flow control. A producer of 1M messages that never slows down, against a consumer
// that takes about 1k messages/s, must not grow memory without bound. Two bounds do it:
// - the link's: while the transport's write buffer (or what the peer has not acknowledged) is
//   above `highWaterMark`, new envelopes wait in the link; past `maxLinkQueue` a send is dropped
//   with a `deadLetter` `overflow` (a call rejects with MAILBOX_FULL); `send` never throws;
// - the mailbox's: `maxMailbox` drops what a slow actor cannot hold (`deadLetter` `mailbox-full`).
// Each test checks retained memory (after a full GC) against a stated bound, and the accounting:
// delivered + dead-lettered = sent, with what was delivered in order and never twice.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, TroupeError, type Node, type NodeOptions } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { mb } from './helpers/memory-probe.ts';
import { deadLetters, expectHeldThenDropped, flood, PAD } from './helpers/flow.ts';

const SECRET = 'backpressure-secret';
const N = 1_000_000;

const nodes: Node[] = [];
const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

function tcpNode(name: string, options: NodeOptions = {}): Node {
  const n = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    autoConnect: false,
    ...options,
  });
  nodes.push(n);
  return n;
}

describe('flow control over TCP', () => {
  it('a slow network (a proxy limited to 1 MB/s): the sender holds then drops, memory stays bounded, every message is accounted for, in order', async () => {
    const flow = { highWaterMark: 256 * 1024, maxLinkQueue: 2 * 1024 * 1024 };
    const b = tcpNode('bp-b', flow);
    const a = tcpNode('bp-a', flow);
    const [addr] = await b.listen();
    const proxy = await createFaultProxy(addr.replace('tcp://', ''));
    proxies.push(proxy);
    proxy.throttle(1_000_000);
    await a.connect(proxy.address);
    const downs: string[] = [];
    a.events.on('linkDown', (e) => downs.push(e.reason));
    const run = await flood(a, b, N);
    const { seen, deadSender: deadA, deadReceiver: deadB, peakQueued, probe } = run;

    // Accounting: nothing lost silently, nothing duplicated, nothing reordered; only the two
    // documented drops happened, and the link never went down. The link did hold back (the proxy
    // could not take 1M messages at once), and what it held stayed under maxLinkQueue.
    expectHeldThenDropped(run, N, flow.maxLinkQueue, downs);
    expect(seen.delivered).toBeGreaterThan(1000);
    // Memory: queue (2 Mi chars) + the transport's buffer (~256 KiB) + the proxy's and the kernel's
    // buffers + a 1000-message mailbox is a few MB; 1M messages held would be ≥ 200 MB.
    const bound = 48e6;
    expect(
      probe.peakGrowth,
      `peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    ).toBeLessThan(bound);
    console.log(
      `[flow/slow network] sent ${N}: delivered ${seen.delivered}, overflow at sender ${deadA.overflow}, mailbox-full ${deadB['mailbox-full']}; ` +
        `peak queued ${peakQueued} chars; peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)}, ${probe.samples} samples)`,
    );
  }, 90_000);

  it('a slow consumer on a fast link, default flow settings: the mailbox bound drops the excess, memory stays bounded, order holds', async () => {
    const b = tcpNode('bc-b');
    const a = tcpNode('bc-a');
    const [addr] = await b.listen();
    await a.connect(addr);
    const { seen, deadSender: deadA, deadReceiver: deadB, probe, accounted } = await flood(a, b, N);
    expect(accounted()).toBe(N);
    expect(seen.notIncreasing).toBe(0);
    expect(Object.keys(deadA).filter((k) => k !== 'overflow')).toEqual([]);
    expect(Object.keys(deadB)).toEqual(['mailbox-full']);
    // Defaults: at most 16 Mi chars queued in the link plus 1 MiB in the socket, and a
    // 1000-message mailbox; 1M messages held would be ≥ 200 MB.
    const bound = 96e6;
    expect(
      probe.peakGrowth,
      `peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    ).toBeLessThan(bound);
    console.log(
      `[flow/slow consumer] sent ${N}: delivered ${seen.delivered}, overflow at sender ${deadA.overflow ?? 0}, mailbox-full ${deadB['mailbox-full']}; ` +
        `peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    );
  }, 90_000);

  it('a call on a congested link rejects with MAILBOX_FULL at once; sends are dropped as overflow, never thrown', async () => {
    const flow = { highWaterMark: 64 * 1024, maxLinkQueue: 256 * 1024 };
    const b = tcpNode('bq-b', flow);
    const a = tcpNode('bq-a', flow);
    const [addr] = await b.listen();
    const proxy = await createFaultProxy(addr.replace('tcp://', ''));
    proxies.push(proxy);
    await a.connect(proxy.address);
    const echo = b.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    const remote = a.ref(echo.node, echo.id);
    expect(await remote.call('before')).toBe('before');
    const deadA = deadLetters(a);
    // A stalled network: bytes stop, the socket stays open. The link fills and holds.
    proxy.cut('blackhole');
    let sent = 0;
    let threw = 0;
    while ((deadA.overflow ?? 0) === 0 && sent < 100_000) {
      try {
        remote.send({ seq: sent++, pad: PAD });
      } catch {
        threw++;
      }
      if (sent % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(threw).toBe(0);
    expect(deadA.overflow).toBeGreaterThan(0);
    // As large as the sends that overflowed, so it cannot squeeze into the space they left.
    const err = await remote.call({ during: PAD }, { timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('MAILBOX_FULL');
    expect((err as TroupeError).message).toMatch(/congested/);
    // The network comes back before the heartbeat timeout: the held messages flow, calls work again.
    proxy.restore();
    expect(await remote.call('after', { timeout: 10_000 })).toBe('after');
  }, 30_000);
});

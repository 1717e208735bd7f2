// Issue 6 — flow control on a WebSocket link: a relay (the `ws` server transport) pushing 1M
// messages to a page-side node (the standard WebSocket API) whose network is slow (a TCP proxy
// limited to 1 MB/s in between) and whose consumer takes ~1k messages/s. The relay's link holds
// envelopes on the socket's `bufferedAmount` and the page's acks, drops past `maxLinkQueue`, and
// memory stays bounded; every message is delivered in order or dead-lettered.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createWebSocketTransport } from '../adapters/websocket.ts';
import { createWebSocketServerTransport } from '../adapters/websocket-server.ts';
import { StandardWebSocket } from './fixtures/websocket-pair.ts';
import { createFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { mb } from './helpers/memory-probe.ts';
import { expectHeldThenDropped, flood, waitFor } from './helpers/flow.ts';

const N = 1_000_000;
const nodes: Node[] = [];
const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

describe('flow control over WebSocket', () => {
  it('a relay pushing to a page on a slow network: the relay holds then drops, memory stays bounded, every message is accounted for, in order', async () => {
    const flow = { highWaterMark: 256 * 1024, maxLinkQueue: 2 * 1024 * 1024, autoConnect: false };
    const relay = createNode({
      name: 'ws-relay',
      secret: 'ws-bp',
      transports: [createWebSocketServerTransport()],
      ...flow,
    });
    const page = createNode({
      name: 'ws-page',
      secret: 'ws-bp',
      transports: [createWebSocketTransport({ WebSocket: StandardWebSocket })],
      ...flow,
    });
    nodes.push(relay, page);
    const [address] = await relay.listen(); // ws://127.0.0.1:PORT/troupe
    const url = new URL(address);
    const proxy = await createFaultProxy(`127.0.0.1:${url.port}`);
    proxies.push(proxy);
    proxy.throttle(1_000_000);
    await page.connect(`ws://${proxy.hostPort}${url.pathname}`);
    await waitFor(
      () => relay.peers().includes('ws-page'),
      'the relay to see the page',
      10_000,
      () => relay.peers().join(),
    );
    const downs: string[] = [];
    relay.events.on('linkDown', (e) => downs.push(e.reason));
    const run = await flood(relay, page, N);
    const { seen, deadSender: deadRelay, deadReceiver: deadPage, peakQueued, probe } = run;

    expectHeldThenDropped(run, N, flow.maxLinkQueue, downs);
    const bound = 48e6;
    expect(
      probe.peakGrowth,
      `peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    ).toBeLessThan(bound);
    console.log(
      `[flow/websocket] sent ${N}: delivered ${seen.delivered}, overflow at the relay ${deadRelay.overflow}, mailbox-full ${deadPage['mailbox-full']}; ` +
        `peak queued ${peakQueued} chars; peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    );
  }, 90_000);
});

// Pages behind a relay that also reach each other over WebRTC, with Node standing in for the
// browser (node-datachannel's polyfill, loopback only, signalled by the relay's PeerServer):
// both pages join over WebSocket with the credential, announce webrtc://<peerId>, hear of each
// other through the relay's membership gossip and dial each other directly. A stream of
// messages sent while the route shortens arrives whole and in order; a cluster node still
// reaches both pages through the relay. Chromium is covered by the Playwright tests.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { createNode, type ActorRef, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWebSocketTransport, type WebSocketConstructor } from '../adapters/websocket.ts';
import { createWebRtcTransport, peerIdFor } from '../adapters/webrtc.ts';
import { startRelay, type RelayCredential } from '../server/relay.ts';
import { installNodeWebRtc } from './webrtc-fixtures.ts';
import { until } from './helpers/nodes.ts';

installNodeWebRtc();

const SECRET = 'relay-webrtc-cluster-secret';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A page-like node: WebSocket to the relay plus WebRTC to other pages, both with the browser secret. */
async function page(name: string, cred: RelayCredential): Promise<Node> {
  const node = createNode({
    name,
    secret: cred.secret,
    transports: [
      createWebSocketTransport({ WebSocket: WebSocket as unknown as WebSocketConstructor }),
      createWebRtcTransport({ signal: cred.peer, secret: cred.secret, peerId: peerIdFor(name) }),
    ],
    heartbeatTimeout: 2000,
  });
  cleanups.push(() => node.shutdown());
  expect(await node.listen()).toEqual([`webrtc://${peerIdFor(name)}`]);
  await node.connect(cred.ws);
  return node;
}

describe('relay + WebRTC between pages (node-datachannel)', () => {
  it('pages dial each other over WebRTC through the relay PeerServer; a stream keeps its order while the route shortens', async () => {
    const relay = await startRelay({ secret: SECRET, listen: '127.0.0.1:0', name: 'relay-rtc' });
    cleanups.push(() => relay.close());
    const cluster = createNode({
      name: 'cluster-rtc',
      secret: SECRET,
      transports: [createTcpTransport()],
    });
    cleanups.push(() => cluster.shutdown());
    await cluster.join(relay.node.addresses.find((a) => a.startsWith('tcp://'))!);

    const a = await page('page-a', relay.credential());
    const b = await page('page-b', relay.credential());

    // B collects a numbered stream and answers calls.
    const got: number[] = [];
    const collector = b.spawn(
      async (self) => {
        for (;;) {
          const m = await self.receive(z.union([z.object({ i: z.number() }), z.literal('count')]));
          if (m === 'count') self.reply(got.length);
          else got.push(m.i);
        }
      },
      { name: 'collector' },
    );
    // A streams to B from before the pages have dialed each other until well after: the first
    // messages go through the relay, the last over the direct link.
    let switchedAt = -1;
    const streamer = a.spawn(async (self) => {
      await until(() => a.isReachable('page-b'), 'page-b reachable from page-a', 10_000);
      let i = 0;
      for (; i < 200_000; i++) {
        if (switchedAt < 0 && a.peers().includes('page-b')) switchedAt = i;
        if (switchedAt >= 0 && i >= switchedAt + 2000) break;
        collector.send({ i });
        if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5)); // spread the stream over the route change
      }
      return { sent: i, count: await self.call(collector, 'count', { timeout: 10_000 }) };
    });
    const done = await a.waitDown(streamer);
    expect(done.reason).toBe('normal');
    const { sent } = done.result as { sent: number };
    expect(switchedAt).toBeGreaterThan(0); // some messages went through the relay first
    expect(a.linkStats().find((l) => l.node === 'page-b')?.label).toBe(
      `webrtc://${peerIdFor('page-b')}`,
    );
    expect(b.peers()).toContain('page-a');
    await until(() => got.length === sent, `all ${sent} messages at page-b`, 10_000);
    expect(got.length).toBe(sent);
    expect(got.every((v, i) => v === i)).toBe(true);
    const N = sent;

    // Later calls take the direct link; the relay's PeerServer lists both pages.
    const framesBefore = relay.node.linkStats().find((l) => l.node === 'page-a')?.framesIn ?? 0;
    for (let i = 0; i < 20; i++) expect(await a.call(collector, 'count')).toBe(N);
    expect(relay.node.linkStats().find((l) => l.node === 'page-a')?.framesIn ?? 0).toBeLessThan(
      framesBefore + 5,
    ); // heartbeats at most
    const peers = (await (await fetch(`${relay.url}/troupe/peers`)).json()) as {
      webrtcPeers: string[];
    };
    expect(peers.webrtcPeers.sort()).toEqual([peerIdFor('page-a'), peerIdFor('page-b')]);

    // The cluster still reaches a page actor through the relay, and gets a ref back that works.
    const back = cluster.spawn(async (self) => {
      const n = await self.call(cluster.ref('page-b', collector.id), 'count', { timeout: 5000 });
      return n;
    });
    expect((await cluster.waitDown(back)).result).toBe(N);

    // Page A goes away: page B's monitor and the cluster's both see noconnection.
    const victim = a.spawn(async (self) => {
      for (;;) await self.receive();
    });
    await until(
      () => b.isReachable('page-a') && cluster.isReachable('page-a'),
      'page-a reachable',
      5000,
    );
    const downAtB = new Promise<{ reason: unknown }>((r) =>
      b.watch(b.ref('page-a', victim.id) as ActorRef, r),
    );
    const downAtCluster = new Promise<{ reason: unknown }>((r) =>
      cluster.watch(cluster.ref('page-a', victim.id), r),
    );
    await a.shutdown();
    expect((await downAtB).reason).toBe('noconnection');
    expect((await downAtCluster).reason).toBe('noconnection');
  });
});

// The WebRTC adapter in Node (node-datachannel's polyfill, loopback only, a real PeerServer on
// 127.0.0.1): the shared transport contract, then what is particular to the adapter — dial
// errors and timeouts, addresses, chunking limits, closing the transport, and two troupe nodes
// linked over WebRTC. Chromium is covered by the Playwright tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createNode, TroupeError, type ActorRef, type Transport } from '../core/index.ts';
import { createWebRtcTransport, peerIdFor } from '../adapters/webrtc.ts';
import { runTransportContract } from './transport-contract.ts';
import { installNodeWebRtc, startPeerServer } from './webrtc-fixtures.ts';
import { listenOn, troupeRejection as rejection, useCleanups } from './helpers/transport.ts';

installNodeWebRtc();

let server: Awaited<ReturnType<typeof startPeerServer>>;
let dialer: Transport;

beforeAll(async () => {
  server = await startPeerServer();
  dialer = createWebRtcTransport({ signal: server.signal, peerId: 'contract-dialer' });
});

afterAll(async () => {
  await dialer?.close();
  await server?.close();
});

/** A fresh listening transport and a promise of its next accepted connection. */
function listening(options: Partial<Parameters<typeof createWebRtcTransport>[0]> = {}) {
  return listenOn(createWebRtcTransport({ signal: server.signal, ...options }));
}

let listeners = 0;

/**
 * Dial a fresh listener from `from` and return both ends. libdatachannel now and then closes a
 * peer connection during its DTLS setup (the dial then fails at once with TRANSPORT_CLOSED, see
 * the adapter); a new listener and dial is tried then, up to three times. Browsers are tested by
 * the Playwright suite.
 */
async function connectedPair(
  from: Transport = dialer,
  options: Partial<Parameters<typeof createWebRtcTransport>[0]> = {},
) {
  for (let attempt = 1; ; attempt++) {
    const far = await listening({ peerId: `listener-${++listeners}`, ...options });
    try {
      const [a, b] = await Promise.all([from.connect(far.address), far.next()]);
      return { a, b, far };
    } catch (err) {
      await far.transport.close();
      if (attempt === 3) throw err;
    }
  }
}

runTransportContract('webrtc (node-datachannel)', async () => {
  const { a, b, far } = await connectedPair();
  return { a, b, cleanup: () => far.transport.close() };
});

describe('webrtc adapter', () => {
  const { cleanups, track } = useCleanups();

  it('announces webrtc://<peerId> and is listed by the PeerServer', async () => {
    const t = track(createWebRtcTransport({ signal: server.signal, peerId: 'listed-one' }));
    expect(await t.listen!(() => {})).toEqual(['webrtc://listed-one']);
    expect(t.canConnect('webrtc://x')).toBe(true);
    expect(t.canConnect('ws://127.0.0.1:1/troupe')).toBe(false);
    expect(server.peers()).toContain('listed-one');
  });

  it('derives valid peerjs ids from node ids', () => {
    expect(peerIdFor('tab-1@host:9')).toBe('tab-1-host-9');
    expect(peerIdFor('a.b/c')).toBe('a-b-c');
    expect(peerIdFor('***')).toMatch(/^troupe-[a-z0-9]+$/);
  });

  it('refuses to be made without a PeerServer host (never the public cloud server)', () => {
    expect(() => createWebRtcTransport({ signal: { host: '', port: 1 } })).toThrow(/signal\.host/);
  });

  it('rejects a dial to an unknown peer id with TRANSPORT_CLOSED', async () => {
    const t = track(createWebRtcTransport({ signal: server.signal, connectTimeout: 8000 }));
    const err = await rejection(t.connect('webrtc://nobody-here'));
    expect(err).toBeInstanceOf(TroupeError);
    expect(err.code).toBe('TRANSPORT_CLOSED');
    expect(err.message).toContain('webrtc://nobody-here');
  });

  it('times out with TRANSPORT_CLOSED when nothing answers the offer (peerjs would hang silently)', async () => {
    // A peer registered with the PeerServer that never answers: a plain websocket client.
    const ws = new WebSocket(
      `ws://127.0.0.1:${server.signal.port}/peerjs/peerjs?key=${server.signal.key}&id=silent&token=t`,
    );
    cleanups.push(() => ws.close());
    await new Promise((resolve, reject) => ws.once('message', resolve).once('error', reject)); // the server's OPEN
    const t = track(createWebRtcTransport({ signal: server.signal, connectTimeout: 600 }));
    const err = await rejection(t.connect('webrtc://silent'));
    expect(err.code).toBe('TRANSPORT_CLOSED');
    expect(err.message).toMatch(/no data channel within 600 ms/);
  });

  it('rejects listen with TRANSPORT_CLOSED when the PeerServer is unreachable or the id is taken', async () => {
    const gone = await startPeerServer();
    await gone.close();
    const t1 = track(createWebRtcTransport({ signal: gone.signal, connectTimeout: 3000 }));
    expect((await rejection(t1.listen!(() => {}))).code).toBe('TRANSPORT_CLOSED');
    const first = track(createWebRtcTransport({ signal: server.signal, peerId: 'taken-id' }));
    await first.listen!(() => {});
    const second = track(createWebRtcTransport({ signal: server.signal, peerId: 'taken-id' }));
    const err = await rejection(second.listen!(() => {}));
    expect(err.code).toBe('TRANSPORT_CLOSED');
    expect(err.message).toMatch(/taken/);
  });

  it('closes a connection whose peer sends a frame over the limit, saying FRAME_TOO_LARGE', async () => {
    const { a, b, far } = await connectedPair(dialer, { maxFrameChars: 1000 });
    track(far.transport);
    const frames: string[] = [];
    b.onframe = (f) => frames.push(f);
    const reasonB = new Promise<string | undefined>((r) => (b.onclose = r));
    const reasonA = new Promise<string | undefined>((r) => (a.onclose = r));
    a.send('fits');
    a.send('x'.repeat(1001));
    expect(await reasonB).toMatch(/^FRAME_TOO_LARGE: /);
    expect(typeof (await reasonA)).toBe('string');
    expect(frames).toEqual(['fits']);
  });

  it('close() of the transport closes its connections on both sides, then refuses dials', async () => {
    const t = createWebRtcTransport({ signal: server.signal });
    const one = await connectedPair(t);
    const two = await connectedPair(t);
    track(one.far.transport);
    track(two.far.transport);
    const conns = [one.a, two.a];
    const accepted = [one.b, two.b];
    const closes = [...conns, ...accepted].map((c) => new Promise((r) => (c.onclose = r)));
    await t.close();
    const reasons = await Promise.all(closes);
    expect(reasons.every((r) => typeof r === 'string')).toBe(true);
    expect((await rejection(t.connect(one.far.address))).code).toBe('TRANSPORT_CLOSED');
  });

  it('links two troupe nodes over WebRTC: a call, a ref passed across, DOWN noconnection on loss', async () => {
    const secret = 'browser-credential';
    const ta = track(createWebRtcTransport({ signal: server.signal, peerId: peerIdFor('node-a') }));
    const tb = track(createWebRtcTransport({ signal: server.signal, peerId: peerIdFor('node-b') }));
    const a = createNode({ name: 'node-a', secret, transports: [ta], heartbeatTimeout: 1500 });
    const b = createNode({ name: 'node-b', secret, transports: [tb], heartbeatTimeout: 1500 });
    cleanups.push(
      () => a.shutdown(),
      () => b.shutdown(),
    );
    await Promise.all([a.listen(), b.listen()]);
    expect(await a.join('webrtc://node-b')).toBe('node-b'); // join redials a failed attempt
    const echo = b.spawn(async (self) => {
      for (;;) {
        const m = (await self.receive()) as { n: number; back: ActorRef };
        m.back.send({ n: m.n + 1 });
        self.reply(m.n * 2);
      }
    });
    const result = a.spawn(async (self) => {
      const r = await self.call(echo, { n: 20, back: self.ref });
      const m = (await self.receive()) as { n: number };
      return [r, m.n];
    });
    const down = await a.waitDown(result);
    expect(down.result).toEqual([40, 21]);
    const watched = new Promise((resolve) => a.watch(echo, resolve));
    await b.shutdown();
    expect(((await watched) as { reason: unknown }).reason).toBe('noconnection');
  });

  it('rejects a node that does not know the transport secret: nothing delivered', async () => {
    const ta = track(createWebRtcTransport({ signal: server.signal, secret: 'right' }));
    const tb = track(createWebRtcTransport({ signal: server.signal, secret: 'wrong' }));
    const a = createNode({ name: 'sec-a', transports: [ta] });
    const b = createNode({ name: 'sec-b', transports: [tb] });
    cleanups.push(
      () => a.shutdown(),
      () => b.shutdown(),
    );
    const [address] = await b.listen();
    const refused = b.events.next('protocolError');
    let err = await rejection(a.connect(address));
    for (let i = 0; i < 2 && err.code === 'TRANSPORT_CLOSED'; i++)
      err = await rejection(a.connect(address)); // see connectedPair
    expect(err.code).toBe('UNAUTHORIZED');
    expect((await refused).error.code).toBe('UNAUTHORIZED');
    expect(a.peers()).toEqual([]);
    expect(b.peers()).toEqual([]);
  });
});

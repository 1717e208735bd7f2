// Nodes joined over real TCP sockets on 127.0.0.1, in one process: calls, 100k ordered messages
// (direct and through a relay node), TLS, and hostile or broken peers (wrong secret, wrong
// version, garbage bytes, oversize frames, a silent client) that are refused with a clear event
// while the node keeps serving its good links.
import net from 'node:net';
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import {
  behaviour,
  createNode,
  reply,
  PROTOCOL_VERSION,
  TroupeError,
  type Node,
  type NodeOptions,
  type ActorRef,
} from '../core/index.ts';
import {
  createTcpTransport,
  createFrameDecoder,
  encodeFrames,
  type TcpTransportOptions,
} from '../adapters/tcp.ts';
import { tlsOptions } from './tcp-fixtures.ts';

const SECRET = 'tcp-test-secret';
const nodes: Node[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

/** A node with a TCP transport listening on an ephemeral port of 127.0.0.1. */
async function tcpNode(
  name: string,
  options: NodeOptions = {},
  transport: TcpTransportOptions = {},
): Promise<Node & { address: string }> {
  const node = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0', ...transport })],
    ...options,
  });
  nodes.push(node);
  const [address] = await node.listen();
  return Object.assign(node, { address });
}

const Echo = z.object({ echo: z.unknown() });

/** An actor answering every call `{ echo: x }` with `{ from: nodeId, echo: x }`. */
function spawnEcho(node: Node): ActorRef<z.infer<typeof Echo>, { from: string; echo: unknown }> {
  return node.spawn(
    behaviour({
      schema: Echo,
      init: () => null,
      handle: (m, s) => reply({ from: node.id, echo: m.echo }, s),
    }),
  ) as ActorRef<z.infer<typeof Echo>, { from: string; echo: unknown }>;
}

/** Resolve once `from` can reach `target` (directly or routed). */
function reachable(from: Node, target: string): Promise<void> {
  return new Promise((resolve) => {
    const off = from.monitorNode(target, (e) => {
      if (!e.up) return;
      off();
      resolve();
    });
    if (from.isReachable(target)) {
      off();
      resolve();
    }
  });
}

/** Spawn on `to` an actor that takes `count` messages `{ i, s }` and ends with what it saw. */
function spawnCounter(to: Node, count: number) {
  return to.spawn(async (self) => {
    let next = 0;
    let outOfOrder = 0;
    while (next < count) {
      const m = (await self.receive(() => true, { timeout: 20_000 })) as { i: number; s: string };
      if (m.i !== next || m.s !== `message ${next}`) outOfOrder++;
      next++;
    }
    return { received: next, outOfOrder };
  });
}

function sendMany(from: Node, target: ActorRef<unknown>, count: number): void {
  from.spawn(async () => {
    const ref = from.ref(target.node, target.id);
    for (let i = 0; i < count; i++) ref.send({ i, s: `message ${i}` });
  });
}

describe('nodes over TCP', () => {
  it('calls an actor on another node over TCP', async () => {
    const a = await tcpNode('a');
    const b = await tcpNode('b');
    expect(b.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    const echo = spawnEcho(b);
    const linkUp = b.events.next('linkUp');
    expect(await a.connect(b.address)).toBe('b');
    expect((await linkUp).node).toBe('a');
    expect(a.peers()).toEqual(['b']);
    expect(await a.ref(echo.node, echo.id).call({ echo: 'over tcp' })).toEqual({
      from: 'b',
      echo: 'over tcp',
    });
    expect(await a.ref(echo.node, echo.id).call({ echo: { nested: ['é', 1, null] } })).toEqual({
      from: 'b',
      echo: { nested: ['é', 1, null] },
    });
  });

  it('calls an actor on another node over TLS', async () => {
    const tls = await tlsOptions();
    const a = await tcpNode('a', {}, tls.client);
    const b = await tcpNode('b', {}, tls.server);
    expect(b.address).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    const echo = spawnEcho(b);
    await a.connect(b.address);
    expect(await a.ref(echo.node, echo.id).call({ echo: 'over tls' })).toEqual({
      from: 'b',
      echo: 'over tls',
    });
  });

  it('delivers 100,000 messages from one actor to another across TCP, complete and in order', async () => {
    const a = await tcpNode('a');
    const b = await tcpNode('b');
    await a.connect(b.address);
    const counter = spawnCounter(b, 100_000);
    const down = b.waitDown(counter);
    sendMany(a, counter, 100_000);
    const { reason, result } = await down;
    expect(reason).toBe('normal');
    expect(result).toEqual({ received: 100_000, outOfOrder: 0 });
  });

  it('delivers 100,000 messages through a relay node in the middle, complete and in order', async () => {
    const opts = { autoConnect: false };
    const a = await tcpNode('a', opts);
    const relay = await tcpNode('relay', opts);
    const c = await tcpNode('c', opts);
    await a.connect(relay.address);
    await c.connect(relay.address);
    await reachable(a, 'c');
    const counter = spawnCounter(c, 100_000);
    const down = c.waitDown(counter);
    sendMany(a, counter, 100_000);
    const { reason, result } = await down;
    expect(reason).toBe('normal');
    expect(result).toEqual({ received: 100_000, outOfOrder: 0 });
    expect(a.peers()).toEqual(['relay']); // it really went through the relay
    expect(relay.linkStats().every((l) => l.label.startsWith('tcp://'))).toBe(true);
  });

  it('three nodes: each calls the others, with one connection per pair even when two dial each other at once', async () => {
    const [a, b, c] = [await tcpNode('a'), await tcpNode('b'), await tcpNode('c')];
    const echoes = new Map([a, b, c].map((n) => [n.id, spawnEcho(n)]));
    await Promise.all([
      a.connect(b.address),
      b.connect(a.address),
      b.connect(c.address),
      c.connect(a.address),
    ]);
    for (const from of [a, b, c]) {
      for (const to of [a, b, c]) {
        if (from === to) continue;
        const e = echoes.get(to.id)!;
        expect(await from.ref(e.node, e.id).call({ echo: from.id })).toEqual({
          from: to.id,
          echo: from.id,
        });
      }
    }
    for (const n of [a, b, c])
      expect(n.peers().sort()).toEqual([a, b, c].filter((x) => x !== n).map((x) => x.id));
  });
});

/** A raw socket speaking framed text to `address`, playing a peer that is not a troupe node. */
async function rawClient(address: string) {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  const frames: string[] = [];
  const decoder = createFrameDecoder();
  socket.on('data', (chunk: Buffer) => decoder.push(chunk, (f) => frames.push(f)));
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    frames,
    gone,
    sendFrames(...texts: string[]) {
      const sizes = texts.map((t) => Buffer.byteLength(t));
      socket.write(
        encodeFrames(
          texts,
          sizes,
          sizes.reduce((n, s) => n + s + 4, 0),
        ),
      );
    },
  };
}

const hello = (node: string, v: number = PROTOCOL_VERSION) =>
  JSON.stringify({
    t: 'hello',
    v,
    node,
    inc: 'raw1',
    nonce: '0123456789abcdef0123456789abcdef',
    addrs: [],
  });

describe('refusing bad peers over TCP', () => {
  /**
   * Server `b` with an inbox actor, and a good node `c` linked to it. `firstMessage` resolves with
   * the first message the inbox gets: the tests send a probe from `c` after the attack, so it is
   * the probe exactly when the attack delivered nothing.
   */
  async function serving(options: NodeOptions = {}, transport: TcpTransportOptions = {}) {
    const b = await tcpNode('b', options, transport);
    const c = await tcpNode('c');
    const echo = spawnEcho(b);
    const inbox = b.spawn(async (self) => self.receive());
    await c.connect(b.address);
    const errors: TroupeError[] = [];
    b.events.on('protocolError', (e) => errors.push(e.error));
    return {
      b,
      c,
      inbox,
      errors,
      nextError: (code: string) => b.events.next('protocolError', (e) => e.error.code === code),
      /** Check b still serves c, and that the inbox got nothing before c's probe. */
      async stillServing() {
        expect(await c.ref(echo.node, echo.id).call({ echo: 'still here' })).toEqual({
          from: 'b',
          echo: 'still here',
        });
        const first = b.waitDown(inbox);
        c.ref(inbox.node, inbox.id).send({ probe: true });
        expect((await first).result).toEqual({ probe: true });
        expect(b.peers()).toEqual(['c']);
      },
    };
  }

  it('wrong secret: both sides get UNAUTHORIZED, the dial fails, nothing is delivered', async () => {
    const s = await serving();
    const mallory = await tcpNode('mallory', { secret: 'not-the-secret' });
    const malloryError = mallory.events.next('protocolError');
    const serverError = s.nextError('UNAUTHORIZED');
    const dial = await mallory.connect(s.b.address).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(dial).toBeInstanceOf(TroupeError);
    expect((dial as TroupeError).code).toBe('UNAUTHORIZED');
    expect((await malloryError).error.code).toBe('UNAUTHORIZED');
    expect((await serverError).error.message).toMatch(/secret/);
    // mallory cannot reach b's actors: a send is a dead letter on its own side
    const dead = mallory.events.next('deadLetter');
    mallory.ref(s.inbox.node, s.inbox.id).send({ from: 'mallory' });
    expect((await dead).reason).toBe('unreachable');
    expect(mallory.peers()).toEqual([]);
    await s.stillServing();
  });

  it('an envelope sent before authenticating is refused with UNAUTHORIZED and not delivered', async () => {
    const s = await serving();
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('UNAUTHORIZED');
    const envelope =
      JSON.stringify({ t: 's', n: 'b', o: 'mallory', h: 0, a: s.inbox.id }) +
      '\t' +
      JSON.stringify({ stolen: true });
    raw.sendFrames(hello('mallory'), envelope);
    expect((await refused).error.message).toMatch(/handshake/);
    await raw.gone;
    expect(raw.frames.some((f) => f.includes('"t":"reject"') && f.includes('UNAUTHORIZED'))).toBe(
      true,
    );
    await s.stillServing();
  });

  it('a wrong protocol version is refused with VERSION_MISMATCH, and the peer is told', async () => {
    const s = await serving();
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('VERSION_MISMATCH');
    raw.sendFrames(hello('time-traveller', PROTOCOL_VERSION + 1));
    expect((await refused).error.message).toMatch(/protocol/);
    await raw.gone;
    const reject = raw.frames
      .map((f) => JSON.parse(f) as { t: string; code?: string })
      .find((m) => m.t === 'reject');
    expect(reject?.code).toBe('VERSION_MISMATCH');
    await s.stillServing();
  });

  it('garbage bytes (an HTTP request) are refused as an oversize frame', async () => {
    const s = await serving();
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('FRAME_TOO_LARGE');
    raw.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const e = await refused;
    expect(e.error.message).toMatch(/bytes; the limit is/);
    expect(e.label).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    await raw.gone;
    await s.stillServing();
  });

  it('garbage text in a well-formed frame is refused before anything else is read', async () => {
    const s = await serving();
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('UNAUTHORIZED');
    raw.sendFrames('\u0000\u0001 not json at all \ufffd', hello('late'));
    expect((await refused).error.message).toMatch(/handshake message/);
    await raw.gone;
    await s.stillServing();
  });

  it('a frame announcing more than the byte limit is refused before it is read', async () => {
    const s = await serving({}, { maxFrameBytes: 64 * 1024 });
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('FRAME_TOO_LARGE');
    raw.sendFrames(hello('bulky'));
    const header = Buffer.alloc(4);
    header.writeUInt32BE(64 * 1024 + 1);
    raw.socket.write(header); // and never the body: it must not be awaited
    // Before authentication the limit is core's handshake limit (16 KiB), lower than maxFrameBytes.
    expect((await refused).error.message).toMatch(/65537 bytes; the limit is 16384/);
    await raw.gone;
    await s.stillServing();
  });

  it("an authenticated peer sending a frame over the node's maxFrameSize is refused; both sides say FRAME_TOO_LARGE", async () => {
    const s = await serving({ maxFrameSize: 64 * 1024 });
    const big = await tcpNode('big');
    await big.connect(s.b.address);
    const serverSide = s.nextError('FRAME_TOO_LARGE');
    const senderSide = big.events.next('protocolError');
    const linkDown = big.events.next('linkDown');
    big.ref(s.inbox.node, s.inbox.id).send({ blob: 'x'.repeat(100 * 1024) });
    expect((await serverSide).error.message).toMatch(/exceeds the limit of 65536/);
    expect((await senderSide).error.code).toBe('FRAME_TOO_LARGE');
    expect((await linkDown).node).toBe('b');
    // big redials after losing the link (core's reconnect); stop it and wait until b sees it gone.
    await big.shutdown();
    await new Promise<void>((resolve) => {
      const off = s.b.monitorNode('big', (e) => {
        if (e.up) return;
        off();
        resolve();
      });
    });
    await s.stillServing();
  });

  it('a client that connects and says nothing is dropped after the handshake timeout', async () => {
    const s = await serving({ handshakeTimeout: 500 });
    const raw = await rawClient(s.b.address);
    const refused = s.nextError('PROTOCOL_ERROR');
    expect((await refused).error.message).toMatch(/handshake timed out/);
    await raw.gone;
    expect(raw.frames.map((f) => (JSON.parse(f) as { t: string }).t)).toEqual(['hello', 'reject']);
    await s.stillServing();
  });

  it('keeps accepting good nodes after refusing bad ones', async () => {
    const s = await serving();
    const garbage = await rawClient(s.b.address);
    garbage.socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await garbage.gone;
    const late = await tcpNode('late');
    expect(await late.connect(s.b.address)).toBe('b');
    expect(s.errors.map((e) => e.code)).toEqual(['FRAME_TOO_LARGE']);
    const echo = spawnEcho(s.b);
    expect(await late.ref(echo.node, echo.id).call({ echo: 1 })).toEqual({ from: 'b', echo: 1 });
  });
});

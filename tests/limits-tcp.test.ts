// Issue 6 — connection limits over real TCP on 127.0.0.1: a flood of connections that never
// authenticate is capped by `maxUnauthenticated` (the surplus is refused at once, told why) and
// cleared by `handshakeTimeout`, while the node keeps serving its authenticated links; the total
// is capped by `maxConnections`, and a dialer refused for it gets a clear error.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, TroupeError, type Node, type NodeOptions } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { RawTcpClient } from './helpers/cluster.ts';

const SECRET = 'limits-tcp-secret';
const nodes: Node[] = [];
const raws: RawTcpClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

async function tcpNode(
  name: string,
  options: NodeOptions = {},
  listen = true,
): Promise<{ node: Node; address: string }> {
  const node = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    autoConnect: false,
    ...options,
  });
  nodes.push(node);
  const [address] = listen ? await node.listen() : [''];
  return { node, address };
}

async function raw(address: string): Promise<RawTcpClient> {
  const r = await RawTcpClient.connect(address.replace('tcp://', ''));
  raws.push(r);
  return r;
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('connection limits over TCP', () => {
  it('a flood of silent connections: at most maxUnauthenticated are kept, the rest refused at once; the node keeps serving; the slots clear after handshakeTimeout', async () => {
    const LIMIT = 16;
    const FLOOD = 200;
    const { node, address } = await tcpNode('gate', {
      maxUnauthenticated: LIMIT,
      handshakeTimeout: 1500,
    });
    const refused: TroupeError[] = [];
    const timedOut: TroupeError[] = [];
    node.events.on('protocolError', (e) =>
      (e.error.message.includes('handshake timed out') ? timedOut : refused).push(e.error),
    );
    // An authenticated peer, linked before the flood.
    const { node: friend } = await tcpNode('friend', {}, false);
    await friend.connect(address);
    const echo = node.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    const remoteEcho = friend.ref(echo.node, echo.id);

    const flood = await Promise.all(Array.from({ length: FLOOD }, () => raw(address)));
    await until(
      () => flood.filter((c) => c.isClosed).length >= FLOOD - LIMIT,
      `${FLOOD - LIMIT} refused connections to be closed`,
    );
    // The refused ones were told why, before any handshake work (no hello from the node).
    const closed = flood.filter((c) => c.isClosed);
    expect(closed).toHaveLength(FLOOD - LIMIT);
    for (const c of closed) {
      expect(c.frames).toHaveLength(1);
      expect(JSON.parse(c.frames[0])).toMatchObject({
        t: 'reject',
        code: 'PROTOCOL_ERROR',
        message: expect.stringContaining('maxUnauthenticated'),
      });
    }
    expect(refused).toHaveLength(FLOOD - LIMIT);
    expect(refused.every((e) => e.code === 'PROTOCOL_ERROR')).toBe(true);
    // The node still serves its authenticated link during the flood.
    expect(await remoteEcho.call('during the flood')).toBe('during the flood');
    // A new dialer is refused while the slots are taken.
    const { node: late } = await tcpNode('late', {}, false);
    const lateErr = await late.connect(address).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(lateErr).toBeInstanceOf(TroupeError);
    expect((lateErr as TroupeError).message).toContain('maxUnauthenticated');
    // The silent ones are dropped after the handshake timeout; then a dialer gets in.
    await until(
      () => flood.every((c) => c.isClosed),
      'the silent connections to be dropped by the handshake timeout',
    );
    expect(timedOut).toHaveLength(LIMIT);
    expect(await late.connect(address)).toBe('gate');
    expect(await late.call(late.ref(echo.node, echo.id), 'after the flood')).toBe(
      'after the flood',
    );
    expect(node.peers().sort()).toEqual(['friend', 'late']);
  });

  it('maxConnections caps the links a node accepts; a dialer refused for it gets a clear error, and a slot frees when a link closes', async () => {
    const { node, address } = await tcpNode('capped', { maxConnections: 2 });
    const peers = await Promise.all(['p1', 'p2'].map((name) => tcpNode(name, {}, false)));
    for (const p of peers) await p.node.connect(address);
    const { node: third } = await tcpNode('p3', {}, false);
    const err = await third.connect(address).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).message).toContain('maxConnections');
    expect(node.peers().sort()).toEqual(['p1', 'p2']);
    peers[0].node.disconnect('capped');
    await until(() => !node.peers().includes('p1'), 'p1 to be gone');
    expect(await third.connect(address)).toBe('capped');
    await until(() => node.peers().includes('p3'), 'p3 to be linked on the capped side too');
    expect(node.peers().sort()).toEqual(['p2', 'p3']);
  });

  it('before authentication a frame may not exceed 16 KiB: a bigger announced length is refused at once, not buffered; after authentication the full limit applies', async () => {
    const { node, address } = await tcpNode('prelimit', { handshakeTimeout: 60_000 });
    const events: { code: string; message: string }[] = [];
    node.events.on('protocolError', (e) =>
      events.push({ code: e.error.code, message: e.error.message }),
    );
    const received: unknown[] = [];
    const sink = node.spawn(async (self) => {
      for (;;) received.push(await self.receive());
    });
    // A stranger announces a 1 MiB frame and sends a little of it: refused at once (the handshake
    // timeout is a minute, so only the limit can explain the close).
    const stranger = await raw(address);
    await stranger.nodeHello();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1024 * 1024, 0);
    stranger.sendBytes(Buffer.concat([head, Buffer.from('{"t":"hello"')]));
    await stranger.closed;
    expect(events).toEqual([
      { code: 'FRAME_TOO_LARGE', message: expect.stringContaining('the limit is 16384') },
    ]);
    // An authenticated peer may send a 1 MiB frame.
    const member = await raw(address);
    await member.handshake('member', SECRET);
    await until(() => node.peers().includes('member'), 'the member to be linked');
    const big = 'x'.repeat(1024 * 1024);
    member.sendFrames(
      `${JSON.stringify({ t: 's', n: 'prelimit', o: 'member', h: 0, a: sink.id })}\tj${JSON.stringify(big)}`,
    );
    await until(() => received.length === 1, 'the 1 MiB message');
    expect(received[0]).toBe(big);
    expect(events).toHaveLength(1);
  });

  it('a raw socket that sends bytes but never a whole frame is dropped by the handshake timeout', async () => {
    const { node, address } = await tcpNode('partial', { handshakeTimeout: 800 });
    const events: string[] = [];
    node.events.on('protocolError', (e) => events.push(e.error.message));
    const at = address.replace('tcp://', '').split(':');
    const s = net.connect({ host: at[0], port: Number(at[1]) });
    s.on('error', () => {});
    const seen: Buffer[] = [];
    s.on('data', (b: Buffer) => seen.push(b)); // read, so the close is seen
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(Buffer.from([0, 0, 1, 0, 123])); // announces 256 bytes, sends 1
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await closed;
    expect(events).toEqual([expect.stringContaining('handshake timed out')]);
    expect(Buffer.concat(seen).toString()).toContain('"t":"hello"');
  });
});

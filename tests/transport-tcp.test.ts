// The shared transport contract over real sockets on 127.0.0.1, plain TCP and TLS, then what is
// particular to the TCP adapter: addresses, dial errors, one write per tick, byte limits, raw
// peers that break the framing, and closing the whole transport.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { TroupeError } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { runTransportContract } from './transport-contract.ts';
import { selfSignedCert, tcpPair, tlsOptions } from './tcp-fixtures.ts';
import { closedWith, listenOn, rejection, useCleanups } from './helpers/transport.ts';

runTransportContract('tcp', () => tcpPair());
runTransportContract('tls', async () => tcpPair(await tlsOptions()));

/** The port of a `tcp://host:port` address. */
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

describe('tcp adapter', () => {
  const { cleanups, track } = useCleanups();

  /** A listening TCP transport and a promise of the next connection it accepts. */
  const listening = (options: Parameters<typeof createTcpTransport>[0] = {}) =>
    listenOn(track(createTcpTransport({ listen: '127.0.0.1:0', ...options })));

  /** A raw socket to `address`, to play a peer that ignores the protocol. */
  async function raw(address: string): Promise<net.Socket & { gone: Promise<void> }> {
    const socket = net.connect(portOf(address), '127.0.0.1');
    cleanups.push(() => socket.destroy());
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.on('error', () => {});
    return Object.assign(socket, {
      gone: new Promise<void>((resolve) => socket.once('close', () => resolve())),
    });
  }

  it('listens on an ephemeral port and announces the real one', async () => {
    const { address } = await listening();
    expect(address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(portOf(address)).toBeGreaterThan(0);
  });

  it('listens on the port it is given, and refuses a port already taken', async () => {
    const first = await listening();
    const port = portOf(first.address);
    const taken = track(createTcpTransport({ listen: `127.0.0.1:${port}` }));
    expect(((await rejection(taken.listen!(() => {}))) as NodeJS.ErrnoException).code).toBe(
      'EADDRINUSE',
    );
    await first.transport.close();
    const again = track(createTcpTransport({ listen: `127.0.0.1:${port}` }));
    expect(await again.listen!(() => {})).toEqual([`tcp://127.0.0.1:${port}`]);
  });

  it('dials only its own scheme', async () => {
    const { cert, key } = await selfSignedCert();
    const plain = createTcpTransport();
    const secure = createTcpTransport({ tls: { key, cert } });
    expect([
      plain.name,
      plain.canConnect('tcp://127.0.0.1:1'),
      plain.canConnect('tls://127.0.0.1:1'),
      plain.canConnect('ws://x'),
    ]).toEqual(['tcp', true, false, false]);
    expect([
      secure.name,
      secure.canConnect('tls://127.0.0.1:1'),
      secure.canConnect('tcp://127.0.0.1:1'),
    ]).toEqual(['tls', true, false]);
  });

  it('rejects a dial nobody answers with TRANSPORT_CLOSED', async () => {
    const { transport, address } = await listening();
    await transport.close(); // the port is free now
    const err = await rejection(track(createTcpTransport()).connect(address));
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('TRANSPORT_CLOSED');
    expect((err as TroupeError).message).toContain('ECONNREFUSED');
  });

  it('redials with a fresh socket after a lost connection, also to a server restarted on the same port', async () => {
    const first = await listening();
    const port = portOf(first.address);
    const dialer = track(createTcpTransport());
    const one = await dialer.connect(first.address);
    const oneClosed = closedWith(one);
    await first.transport.close(); // the server goes away with its connections
    await oneClosed;
    expect(((await rejection(dialer.connect(first.address))) as TroupeError).code).toBe(
      'TRANSPORT_CLOSED',
    );
    const restarted = track(createTcpTransport({ listen: `127.0.0.1:${port}` }));
    const got: string[] = [];
    let received!: () => void;
    const done = new Promise<void>((r) => (received = r));
    await restarted.listen!((c) => {
      c.onframe = (f) => {
        got.push(f);
        received();
      };
    });
    const two = await dialer.connect(first.address);
    two.send('after restart');
    await done;
    expect(got).toEqual(['after restart']);
  });

  it('rejects a malformed address with TRANSPORT_CLOSED instead of throwing', async () => {
    const t = track(createTcpTransport());
    const err = await rejection(t.connect('tcp://no-port-here'));
    expect((err as TroupeError).code).toBe('TRANSPORT_CLOSED');
  });

  it('writes all frames sent in one tick with one socket write', async () => {
    const pair = await tcpPair();
    cleanups.push(pair.cleanup);
    const got: string[] = [];
    let all!: () => void;
    const done = new Promise<void>((r) => (all = r));
    pair.b.onframe = (f) => {
      got.push(f);
      if (got.length === 100) all();
    };
    const write = net.Socket.prototype.write;
    let writes = 0;
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      writes++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    try {
      for (let i = 0; i < 100; i++) pair.a.send(`frame ${i}`);
      expect(pair.a.bufferedAmount).toBeGreaterThan(0); // queued for this tick's write
      await done;
    } finally {
      net.Socket.prototype.write = write;
    }
    expect(writes).toBe(1);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `frame ${i}`));
  });

  it('issue 14: answers to a bulk read share one write with those sent from promise callbacks after it; answers to a small read leave at the end of the tick', async () => {
    const { address, next } = await listening();
    const socket = await raw(address);
    socket.setNoDelay(true);
    const conn = await next();
    const write = net.Socket.prototype.write;
    const writes: string[] = [];
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      if (this !== socket) writes.push((args[0] as Buffer).toString('latin1'));
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    const got: number[] = [];
    let arrived!: () => void;
    // As core does: an ack from the frame handler, credit from a promise callback after it.
    conn.onframe = (f) => {
      got.push(f.length);
      conn.send(`ack ${got.length}`);
      void Promise.resolve().then(() => conn.send(`credit ${got.length}`));
      void Promise.resolve().then(() => arrived());
    };
    const frame = (chars: number) => {
      const b = Buffer.alloc(4 + chars, 'a');
      b.writeUInt32BE(chars, 0);
      return b;
    };
    try {
      // A 70,000-byte frame whose last read is 30,000 bytes (a bulk read).
      let done = new Promise<void>((r) => (arrived = r));
      const big = frame(70_000);
      socket.write(big.subarray(0, 40_004));
      await new Promise((r) => setTimeout(r, 30));
      socket.write(big.subarray(40_004));
      await done;
      await new Promise((r) => setImmediate(r));
      expect(writes).toHaveLength(1);
      expect(writes[0]).toContain('ack 1');
      expect(writes[0]).toContain('credit 1');
      // A small frame (a call): its answer is not held for the read turn.
      writes.length = 0;
      done = new Promise<void>((r) => (arrived = r));
      socket.write(frame(100));
      await done;
      await new Promise((r) => setImmediate(r));
      expect(writes.map((w) => w.slice(4))).toEqual(['ack 2', 'credit 2']);
    } finally {
      net.Socket.prototype.write = write;
    }
    expect(got).toEqual([70_000, 100]);
  });

  it('decodes frames a raw peer writes one byte at a time', async () => {
    const { address, next } = await listening();
    const socket = await raw(address);
    socket.setNoDelay(true);
    const conn = await next();
    const got: string[] = [];
    let two!: () => void;
    const done = new Promise<void>((r) => (two = r));
    conn.onframe = (f) => {
      got.push(f);
      if (got.length === 2) two();
    };
    const bytes = Buffer.concat([
      Buffer.from([0, 0, 0, 6]),
      Buffer.from('héllo'),
      Buffer.from([0, 0, 0, 4]),
      Buffer.from('😀'),
    ]);
    for (const byte of bytes) {
      socket.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, 1));
    }
    await done;
    expect(got).toEqual(['héllo', '😀']);
  });

  it('closes a connection whose peer announces a frame over the limit, saying FRAME_TOO_LARGE', async () => {
    const { address, next } = await listening({ maxFrameBytes: 1000 });
    const socket = await raw(address);
    const conn = await next();
    const frames: string[] = [];
    conn.onframe = (f) => frames.push(f);
    const reason = closedWith(conn);
    const ok = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('ok')]);
    socket.write(Buffer.concat([ok, Buffer.from([0, 0, 3, 233])])); // 1001 bytes announced, none sent
    expect(await reason).toMatch(/^FRAME_TOO_LARGE: .*1001 bytes.*limit is 1000/);
    await socket.gone;
    expect(frames).toEqual(['ok']);
  });

  it('treats garbage bytes as an oversize length (an HTTP request, for one)', async () => {
    const { address, next } = await listening();
    const socket = await raw(address);
    const conn = await next();
    const reason = closedWith(conn);
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await reason).toMatch(/^FRAME_TOO_LARGE: /);
    await socket.gone;
  });

  it('refuses to send a frame over its own limit: closes instead of breaking the stream', async () => {
    const pair = await tcpPair({ client: { maxFrameBytes: 100 } });
    cleanups.push(pair.cleanup);
    const got: string[] = [];
    pair.b.onframe = (f) => got.push(f);
    const [reasonA, reasonB] = [closedWith(pair.a), closedWith(pair.b)];
    pair.a.send('fits');
    pair.a.send('\u0101'.repeat(51)); // 102 bytes (a character above U+00FF: UTF-8; a byte string would go as Latin-1)
    pair.a.send('never sent');
    expect(await reasonA).toMatch(/^FRAME_TOO_LARGE: refusing to send a frame of 102 bytes/);
    await reasonB;
    expect(got).toEqual([]); // the tick's batch is dropped with the connection, never half-written
  });

  it('reports a peer that vanishes as a close with a reason', async () => {
    const { address, next } = await listening();
    const socket = await raw(address);
    const conn = await next();
    const reason = closedWith(conn);
    socket.destroy();
    expect(await reason).toMatch(/closed by peer|socket error/);
  });

  it('close() of the transport closes every connection it dialed or accepted, and stops listening', async () => {
    const server = await listening();
    const dialer = track(createTcpTransport());
    const dialed = [await dialer.connect(server.address), await dialer.connect(server.address)];
    const accepted = [await server.next(), await server.next()];
    const other = track(createTcpTransport());
    const outsider = await other.connect(server.address);
    const outsiderAccepted = await server.next();
    const closes = [...dialed, ...accepted, outsider, outsiderAccepted].map(closedWith);
    await server.transport.close();
    const reasons = await Promise.all(closes);
    expect(reasons.every((r) => typeof r === 'string')).toBe(true);
    expect(((await rejection(other.connect(server.address))) as TroupeError).code).toBe(
      'TRANSPORT_CLOSED',
    );
    expect(
      ((await rejection(server.transport.connect(server.address))) as TroupeError).message,
    ).toContain('transport is closed');
    await dialer.close();
  });

  it('refuses a TLS server whose certificate the dialer does not trust', async () => {
    const { key, cert } = await selfSignedCert();
    const server = track(createTcpTransport({ listen: '127.0.0.1:0', tls: { key, cert } }));
    let accepted = 0;
    let onAccept!: () => void;
    const acceptedOne = new Promise<void>((r) => (onAccept = r));
    const [address] = await server.listen!(() => {
      accepted++;
      onAccept();
    });
    expect(address).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    const err = await rejection(track(createTcpTransport({ tls: {} })).connect(address));
    expect((err as TroupeError).code).toBe('TRANSPORT_CLOSED');
    expect((err as TroupeError).message).toMatch(/self[- ]signed/i);
    // and a trusting dialer gets through the same server
    const ok = await track(createTcpTransport({ tls: { ca: cert } })).connect(address);
    await acceptedOne;
    ok.close();
    expect(accepted).toBe(1); // the refused dial never became a connection
  });

  it('a plain TCP dialer speaking to a TLS server is dropped by the server', async () => {
    const { key, cert } = await selfSignedCert();
    const server = track(createTcpTransport({ listen: '127.0.0.1:0', tls: { key, cert } }));
    let accepted = 0;
    const [address] = await server.listen!(() => accepted++);
    const conn = await track(createTcpTransport()).connect(address.replace('tls://', 'tcp://'));
    const reason = closedWith(conn);
    conn.send('{"t":"hello"}');
    expect(typeof (await reason)).toBe('string');
    expect(accepted).toBe(0);
  });
});

// The shared transport contract over WebSocket on 127.0.0.1 — the browser-side transport (over
// `ws`'s client, the standard API), the Node server transport's own dialer, and wss — then what
// is particular to WebSocket: addresses, dial errors and timeouts, the verifyClient hook, sharing
// an HTTP server, payload limits, binary messages, and closing the whole transport.
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocket as WsWebSocket, WebSocketServer } from 'ws';
import type { Connection, Transport } from '../core/index.ts';
import { createWebSocketTransport } from '../adapters/websocket.ts';
import {
  createWebSocketServerTransport,
  type WebSocketServerTransportOptions,
} from '../adapters/websocket-server.ts';
import { runTransportContract } from './transport-contract.ts';
import { StandardWebSocket, wsPair } from './fixtures/websocket-pair.ts';
import { selfSignedCert } from './tcp-fixtures.ts';
import { until } from './helpers/nodes.ts';
import {
  closedWith,
  listenOn,
  troupeRejection as rejection,
  useCleanups,
} from './helpers/transport.ts';

runTransportContract('websocket (standard client → ws server)', () => wsPair());
runTransportContract('websocket (ws client → ws server)', () => wsPair({ dialer: 'server' }));
runTransportContract('websocket over TLS (wss)', async () => {
  const { key, cert } = await selfSignedCert();
  return wsPair({ dialer: 'server', server: { tls: { key, cert } } });
});

describe('websocket adapter', () => {
  const { cleanups, track } = useCleanups();
  const dialer = () => track(createWebSocketTransport({ WebSocket: StandardWebSocket }));

  /** A listening server transport and a promise of the next connection it accepts. */
  const listening = (options: WebSocketServerTransportOptions = {}) =>
    listenOn(track(createWebSocketServerTransport({ listen: '127.0.0.1:0', ...options })));

  it('listens on an ephemeral port and announces ws://host:port/path (or the public URL it is told)', async () => {
    const { address } = await listening();
    expect(address).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/troupe$/);
    const custom = await listening({ path: '/x/y', publicUrl: 'wss://relay.example/x/y' });
    expect(custom.address).toBe('wss://relay.example/x/y');
    const { key, cert } = await selfSignedCert();
    expect((await listening({ tls: { key, cert } })).address).toMatch(
      /^wss:\/\/127\.0\.0\.1:\d+\/troupe$/,
    );
  });

  it('dials only ws:// and wss://, and carries the secret it is given', () => {
    const t = createWebSocketTransport({ WebSocket: StandardWebSocket, secret: 'page-credential' });
    const s = createWebSocketServerTransport({ secret: 'page-credential' });
    cleanups.push(() => s.close());
    expect([
      t.name,
      t.secret,
      t.canConnect('ws://h:1/p'),
      t.canConnect('wss://h:1/p'),
      t.canConnect('tcp://h:1'),
    ]).toEqual(['websocket', 'page-credential', true, true, false]);
    expect([s.name, s.secret, s.canConnect('WSS://h:1/p'), s.canConnect('http://h:1')]).toEqual([
      'websocket',
      'page-credential',
      true,
      false,
    ]);
    expect(createWebSocketTransport({ WebSocket: StandardWebSocket }).secret).toBeUndefined();
  });

  it('without a WebSocket constructor, refuses to be created (loudly, not at the first dial)', () => {
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    g.WebSocket = undefined;
    try {
      expect(() => createWebSocketTransport()).toThrow(/no WebSocket here/);
    } finally {
      g.WebSocket = saved;
    }
  });

  it('rejects a dial nobody answers with TRANSPORT_CLOSED', async () => {
    const { transport, address } = await listening();
    await transport.close();
    const err = await rejection(dialer().connect(address));
    expect(err.code).toBe('TRANSPORT_CLOSED');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('gives up a dial whose server never answers the upgrade, with TRANSPORT_CLOSED', async () => {
    const silent = net.createServer(() => {}); // accepts, says nothing
    const sockets: net.Socket[] = [];
    silent.on('connection', (s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as net.AddressInfo).port;
    const t = track(
      createWebSocketTransport({ WebSocket: StandardWebSocket, connectTimeout: 200 }),
    );
    const err = await rejection(t.connect(`ws://127.0.0.1:${port}/troupe`));
    expect(err.code).toBe('TRANSPORT_CLOSED');
    expect(err.message).toBe(
      `cannot connect to ws://127.0.0.1:${port}/troupe: no answer within 200 ms`,
    );
    const s = track(createWebSocketServerTransport({ connectTimeout: 200 }));
    expect((await rejection(s.connect(`ws://127.0.0.1:${port}/troupe`))).message).toContain(
      'no answer within 200 ms',
    );
  });

  it('answers 404 on its own server for another path', async () => {
    const { address, accepted } = await listening();
    const err = await rejection(dialer().connect(address.replace('/troupe', '/elsewhere')));
    expect(err.message).toContain('404');
    expect(accepted).toEqual([]);
  });

  it('verifyClient sees the origin and the query, and a refusal is a 403 (sync or async)', async () => {
    const seen: { origin?: string; token: string | null; secure: boolean }[] = [];
    const { address, next } = await listening({
      verifyClient: async ({ origin, url, secure }) => {
        seen.push({ origin, token: url.searchParams.get('token'), secure });
        await new Promise((r) => setTimeout(r, 5));
        return origin === 'http://good.example' && url.searchParams.get('token') === 'ok';
      },
    });
    const from = (origin: string) =>
      track(createWebSocketServerTransport({ clientOptions: { origin } }));
    const refused = await rejection(from('http://evil.example').connect(`${address}?token=ok`));
    expect(refused.message).toContain('403');
    expect(
      (await rejection(from('http://good.example').connect(`${address}?token=bad`))).message,
    ).toContain('403');
    const conn = await from('http://good.example').connect(`${address}?token=ok`);
    expect(conn.label).toBe(address); // the query (a token) stays out of the label
    expect((await next()).label).toMatch(/^websocket client 127\.0\.0\.1:\d+$/);
    expect(seen).toEqual([
      { origin: 'http://evil.example', token: 'ok', secure: false },
      { origin: 'http://good.example', token: 'bad', secure: false },
      { origin: 'http://good.example', token: 'ok', secure: false },
    ]);
    const sync = await listening({ verifyClient: () => false });
    expect((await rejection(dialer().connect(sync.address))).message).toContain('403');
    const throwing = await listening({
      verifyClient: () => {
        throw new Error('hook bug');
      },
    });
    expect((await rejection(dialer().connect(throwing.address))).message).toContain('403');
  });

  it('shares an existing HTTP server: its routes and another noServer ws path keep working, and it outlives the transport', async () => {
    const app = http.createServer((_req, res) => res.end('hello from the app'));
    const other = new WebSocketServer({ noServer: true });
    other.on('connection', (ws) => ws.on('message', (m) => ws.send(`other:${String(m)}`)));
    app.on('upgrade', (req, socket, head) => {
      if (req.url === '/other')
        other.handleUpgrade(req, socket, head, (ws) => other.emit('connection', ws, req));
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => app.close(r)));
    cleanups.push(() => other.close());
    const port = (app.address() as net.AddressInfo).port;

    const transport = createWebSocketServerTransport({ server: app, path: '/troupe' });
    const accepted: Connection[] = [];
    expect(await transport.listen((c) => accepted.push(c))).toEqual([
      `ws://127.0.0.1:${port}/troupe`,
    ]);
    const conn = await dialer().connect(`ws://127.0.0.1:${port}/troupe`);
    await until(() => accepted.length === 1, 'the troupe connection');
    const got: string[] = [];
    accepted[0].onframe = (f) => got.push(f);
    conn.send('frame over the shared port');
    await until(() => got.length === 1, 'a frame');
    expect(got).toEqual(['frame over the shared port']);

    const raw = new WsWebSocket(`ws://127.0.0.1:${port}/other`);
    const echoed = new Promise<string>((resolve) => raw.once('message', (m) => resolve(String(m))));
    raw.once('open', () => raw.send('ping'));
    expect(await echoed).toBe('other:ping');
    raw.close();
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello from the app');

    const closed = closedWith(accepted[0]);
    await transport.close();
    expect(typeof (await closed)).toBe('string');
    expect(app.listening).toBe(true); // not the transport's to close
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('hello from the app');
  });

  it('closes a connection whose peer sends a message over maxFrameBytes, saying FRAME_TOO_LARGE', async () => {
    const { address, next } = await listening({ maxFrameBytes: 1000 });
    const conn = await dialer().connect(address);
    const server = await next();
    const got: string[] = [];
    server.onframe = (f) => got.push(f);
    const [serverReason, clientReason] = [closedWith(server), closedWith(conn)];
    conn.send('fits');
    conn.send('\u0101'.repeat(501)); // 1002 bytes (a character above U+00FF: UTF-8 text; a byte string would go as 501 Latin-1 bytes)
    expect(await serverReason).toMatch(/^FRAME_TOO_LARGE: /);
    expect(await clientReason).toMatch(/1009/);
    expect(got).toEqual(['fits']);
  });

  it('takes a binary message as a frame of Latin-1 bytes, and sends a byte-string frame as one', async () => {
    const { address, next } = await listening();
    const raw = new WsWebSocket(address);
    cleanups.push(() => raw.terminate());
    await new Promise((r) => raw.once('open', r));
    const server = await next();
    const got = new Promise<string>((resolve) => (server.onframe = resolve));
    raw.send(Buffer.from([0x41, 0xe9, 0xff, 0x00]));
    expect(await got).toBe('A\u00e9\u00ff\u0000');
    const back = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
      raw.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
    );
    server.send('\u00ff\u0080x');
    const msg = await back;
    expect(msg.isBinary).toBe(true);
    expect([...msg.data]).toEqual([0xff, 0x80, 0x78]);
  });

  it('reports a peer that vanishes without a closing handshake', async () => {
    const { address, next } = await listening();
    const raw = new WsWebSocket(address);
    await new Promise((r) => raw.once('open', r));
    const server = await next();
    const reason = closedWith(server);
    raw.terminate();
    expect(await reason).toMatch(/^closed by peer \(1006/);
  });

  it('exposes bufferedAmount from the socket', async () => {
    const pair = await wsPair();
    cleanups.push(pair.cleanup);
    expect(pair.a.bufferedAmount).toBe(0);
    expect(pair.b.bufferedAmount).toBe(0);
  });

  it('close() of the server transport closes what it accepted and dialed, stops listening, and refuses to dial', async () => {
    const server = await listening();
    const other = await listening();
    const dialed = [await dialer().connect(server.address), await dialer().connect(server.address)];
    const accepted = [await server.next(), await server.next()];
    const outgoing = await server.transport.connect(other.address); // the server transport dials too
    const outgoingAccepted = await other.next();
    const closes = [...dialed, ...accepted, outgoing, outgoingAccepted].map(closedWith);
    await server.transport.close();
    expect((await Promise.all(closes)).every((r) => typeof r === 'string')).toBe(true);
    expect((await rejection(dialer().connect(server.address))).code).toBe('TRANSPORT_CLOSED');
    expect((await rejection(server.transport.connect(other.address))).message).toContain(
      'transport is closed',
    );
  });

  it('close() of the dialing transport closes its connections', async () => {
    const server = await listening();
    const t: Transport = createWebSocketTransport({ WebSocket: StandardWebSocket });
    const conn = await t.connect(server.address);
    const accepted = await server.next();
    const [mine, theirs] = [closedWith(conn), closedWith(accepted)];
    await t.close();
    expect(await mine).toBe('closed by this side');
    expect(await theirs).toMatch(/^closed by peer \(1000/);
    expect((await rejection(t.connect(server.address))).message).toContain('transport is closed');
  });
});

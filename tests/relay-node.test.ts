// The browser relay without a browser: a relay (in this process, and once as a real
// `troupe relay` child process), a TCP cluster node, and a "page-like" Node node that gets its
// credential from /troupe/credential and links over WebSocket (`ws`'s client). Calls and refs
// cross the relay both ways; wrong secrets, tokens, origins and hosts are refused.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { createNode, TroupeError, type ActorRef, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import {
  createWebSocketTransport,
  relayCredentialAddress,
  type WebSocketConstructor,
} from '../adapters/websocket.ts';
import {
  startRelay,
  type Relay,
  type RelayCredential,
  type RelayOptions,
  type RelayPeers,
} from '../server/relay.ts';
import { until } from './helpers/nodes.ts';

const SECRET = 'relay-test-cluster-secret';
const PAGE_ORIGIN = 'http://127.0.0.1:5173';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function relayUp(options: Partial<RelayOptions> = {}): Promise<Relay> {
  const relay = await startRelay({ secret: SECRET, listen: '127.0.0.1:0', ...options });
  cleanups.push(() => relay.close());
  return relay;
}

/** A cluster node on TCP with the cluster secret, joined to `seed`. */
async function tcpNode(name: string, seed?: string): Promise<Node> {
  const node = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    heartbeatTimeout: 1500,
  });
  cleanups.push(() => node.shutdown());
  await node.listen();
  if (seed) await node.join(seed);
  return node;
}

/** A page-like node: only a WebSocket transport, the browser secret from the credential. */
function pageNode(name: string, cred: Pick<RelayCredential, 'secret'>): Node {
  const node = createNode({
    name,
    secret: cred.secret,
    transports: [
      createWebSocketTransport({ WebSocket: WebSocket as unknown as WebSocketConstructor }),
    ],
    heartbeatTimeout: 1500,
  });
  cleanups.push(() => node.shutdown());
  return node;
}

async function getCredential(relayUrl: string, origin = PAGE_ORIGIN): Promise<RelayCredential> {
  const res = await fetch(`${relayUrl}/troupe/credential`, { headers: { Origin: origin } });
  expect(res.status).toBe(200);
  expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  return (await res.json()) as RelayCredential;
}

/** A raw HTTP GET with any headers (fetch will not set Host). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** Open a WebSocket with headers and report how the upgrade went: 'open' or the HTTP status. */
function tryUpgrade(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(String(res.statusCode));
      ws.terminate();
    });
    ws.on('error', () => resolve('error'));
  });
}

async function rejection(p: Promise<unknown>): Promise<TroupeError> {
  try {
    await p;
  } catch (err) {
    return err as TroupeError;
  }
  throw new Error('expected a rejection');
}

const Doubled = z.object({ n: z.number(), back: z.custom<ActorRef>() });

describe('relay (in process)', () => {
  it('hands allowed origins a credential: browser secret, expiry, ws URL with token, PeerServer; never the cluster secret', async () => {
    const relay = await relayUp();
    const before = Date.now();
    const res = await fetch(`${relay.url}/troupe/credential`, { headers: { Origin: PAGE_ORIGIN } });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(PAGE_ORIGIN);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(text).not.toContain(SECRET);
    const cred = JSON.parse(text) as RelayCredential;
    const port = Number(new URL(relay.url).port);
    expect(cred).toEqual({
      secret: expect.any(String),
      expiresAt: expect.any(Number),
      ws: `ws://127.0.0.1:${port}/troupe?token=${cred.token}`,
      token: `${cred.expiresAt}.${cred.ns}.${cred.token.split('.')[2]}`,
      ns: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
      peer: { host: '127.0.0.1', port, path: '/peerjs', key: expect.any(String), secure: false },
      relay: relay.node.id,
    });
    expect(cred.secret).not.toBe(SECRET);
    expect(cred.secret.length).toBeGreaterThanOrEqual(24);
    expect(cred.expiresAt).toBeGreaterThanOrEqual(before + 3_600_000);
    // Each start makes its own browser secret and PeerServer key.
    const other = await relayUp();
    const cred2 = await getCredential(other.url);
    expect(cred2.secret).not.toBe(cred.secret);
    expect(cred2.peer.key).not.toBe(cred.peer.key);
  });

  it('a page calls a cluster actor through the relay, the cluster calls the page, and refs cross both ways', async () => {
    const relay = await relayUp();
    const tcpAddr = relay.node.addresses.find((a) => a.startsWith('tcp://'))!;
    const cluster = await tcpNode('cluster-1', tcpAddr);
    // A cluster actor that answers a call and also replies through a ref it is given.
    cluster.spawn(
      async (self) => {
        for (;;) {
          const m = await self.receive(Doubled);
          m.back.send({ doubled: m.n * 2, from: self.ref });
          self.reply(m.n * 2);
        }
      },
      { name: 'doubler' },
    );
    const cred = await getCredential(relay.url);
    const page = pageNode('page-1', cred);
    expect(await page.connect(cred.ws)).toBe(relay.node.id);
    await until(
      () => page.whereis('doubler') !== undefined,
      'the name "doubler" replicated to the page',
      5000,
    );

    // page → cluster: a call, with the page actor's own ref inside; the cluster replies through it.
    const asker = page.spawn(async (self) => {
      const answer = await self.call(page.whereis('doubler')!, { n: 21, back: self.ref });
      const echoed = (await self.receive(
        z.object({ doubled: z.number(), from: z.custom<ActorRef>() }),
        { timeout: 5000 },
      )) as { doubled: number; from: ActorRef };
      // The ref of the cluster actor, received from across the relay, is callable from here.
      const again = await self.call(echoed.from, { n: 5, back: self.ref });
      return { answer, echoed: echoed.doubled, fromNode: echoed.from.node, again };
    });
    const down = await page.waitDown(asker);
    expect(down.reason).toBe('normal');
    expect(down.result).toEqual({ answer: 42, echoed: 42, fromNode: 'cluster-1', again: 10 });

    // cluster → page: a page actor registered by name, called from the TCP node.
    page.spawn(
      async (self) => {
        for (;;) {
          const m = await self.receive(z.object({ greet: z.string(), back: z.custom<ActorRef>() }));
          m.back.send({ hello: `${m.greet} from the page` });
          self.reply(`page got ${m.greet}`);
        }
      },
      { name: 'page-greeter' },
    );
    await until(
      () => cluster.whereis('page-greeter') !== undefined,
      'the page name replicated to the cluster',
      5000,
    );
    const caller = cluster.spawn(async (self) => {
      const r = await self.call(cluster.whereis('page-greeter')!, { greet: 'hi', back: self.ref });
      const m = await self.receive(z.object({ hello: z.string() }), { timeout: 5000 });
      return [r, m.hello];
    });
    expect((await cluster.waitDown(caller)).result).toEqual(['page got hi', 'hi from the page']);
    // Neither end links to the other directly: everything went through the relay.
    expect(page.peers()).toEqual([relay.node.id]);
    expect(cluster.peers()).toEqual([relay.node.id]);
  });

  it('a page that goes away: cluster monitors of its actors get DOWN noconnection', async () => {
    const relay = await relayUp();
    const cluster = await tcpNode(
      'cluster-2',
      relay.node.addresses.find((a) => a.startsWith('tcp://')),
    );
    const cred = await getCredential(relay.url);
    const page = pageNode('page-2', cred);
    await page.connect(cred.ws);
    const pageActor = page.spawn(async (self) => {
      await self.receive();
    });
    await until(() => cluster.isReachable('page-2'), 'the page reachable from the cluster', 5000);
    const down = new Promise<{ reason: unknown }>((resolve) =>
      cluster.watch(cluster.ref('page-2', pageActor.id), resolve),
    );
    page.disconnect(relay.node.id); // the tab closes: its only link drops
    expect((await down).reason).toBe('noconnection');
  });

  it('a page that joins with relayCredentialAddress rejoins the relay restarted on the same port with the same browser secret', async () => {
    const fixed = { name: 'relay-again', browserSecret: 'relay-test-browser-secret' };
    const first = await relayUp(fixed);
    const credentialUrl = `${first.url}/troupe/credential`;
    const cred = await getCredential(first.url);
    const page = createNode({
      name: 'page-again',
      secret: cred.secret,
      transports: [
        createWebSocketTransport({
          WebSocket: WebSocket as unknown as WebSocketConstructor,
          resolve: relayCredentialAddress(credentialUrl),
        }),
      ],
      heartbeatTimeout: 1500,
    });
    cleanups.push(() => page.shutdown());
    page.spawn(
      async (self) => {
        for (;;) {
          await self.receive();
          self.reply('from the page');
        }
      },
      { name: 'page-echo' },
    );
    expect(await page.join(cred.ws)).toBe('relay-again');
    await first.close();
    await until(() => !page.isReachable('relay-again'), 'the page to lose the relay', 5000);

    const again = await relayUp({ ...fixed, listen: new URL(first.url).host });
    // The credential the page started with names a token the new relay does not accept (a new key)…
    expect(again.credential().secret).toBe(cred.secret);
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(cred.ws);
      ws.on('open', () => resolve('opened'));
      ws.on('error', (err) => resolve(err.message));
    });
    expect(refused).toMatch(/403/);
    // …yet the page redials on its own with a fresh one; its actor is reachable by name again.
    await until(
      () => page.peers().includes('relay-again'),
      'the page to rejoin the restarted relay',
      15_000,
    );
    await until(
      () => again.node.whereis('page-echo') !== undefined,
      'the page name back on the relay',
      5000,
    );
    expect(await again.node.call('page-echo', 'hi', { timeout: 5000 })).toBe('from the page');
  });

  it('lists what is behind it at /troupe/peers: pages, cluster members and PeerServer ids', async () => {
    const relay = await relayUp({ name: 'relay-peers' });
    await tcpNode(
      'cluster-3',
      relay.node.addresses.find((a) => a.startsWith('tcp://')),
    );
    const cred = await getCredential(relay.url);
    await pageNode('page-3', cred).connect(cred.ws);
    // A peerjs client registers with the PeerServer over the same HTTP server.
    const signal = new WebSocket(
      `ws://127.0.0.1:${cred.peer.port}${cred.peer.path}/peerjs?key=${cred.peer.key}&id=tab-3&token=t`,
    );
    cleanups.push(() => signal.terminate());
    const opened = await new Promise<string>((resolve, reject) =>
      signal.once('message', (m) => resolve(String(m))).once('error', reject),
    );
    expect(JSON.parse(opened).type).toBe('OPEN');
    const res = await fetch(`${relay.url}/troupe/peers`, { headers: { Origin: PAGE_ORIGIN } });
    expect(res.status).toBe(200);
    const peers = (await res.json()) as RelayPeers;
    expect(peers.relay).toBe('relay-peers');
    const byNode = Object.fromEntries(peers.links.map((l) => [l.node, l.transport]));
    expect(byNode).toEqual({ 'cluster-3': 'tcp', 'page-3': 'websocket' });
    expect(peers.nodes.sort()).toEqual(['cluster-3', 'page-3']);
    expect(peers.webrtcPeers).toEqual(['tab-3']);
    // The PeerServer's own discovery endpoint answers too, under the key.
    const listed = await fetch(`${relay.url}/peerjs/${cred.peer.key}/peers`);
    expect(await listed.json()).toEqual(['tab-3']);
    // A wrong PeerServer key is refused by the PeerServer.
    const wrong = new WebSocket(
      `ws://127.0.0.1:${cred.peer.port}/peerjs/peerjs?key=nope&id=tab-4&token=t`,
    );
    cleanups.push(() => wrong.terminate());
    const answer = await new Promise<string>((resolve) =>
      wrong.once('message', (m) => resolve(String(m))),
    );
    expect(JSON.parse(answer)).toMatchObject({ type: 'ERROR' });
  });

  it('refuses a page that proves the wrong secret: nothing delivered, the relay reports UNAUTHORIZED', async () => {
    const relay = await relayUp();
    const cluster = await tcpNode(
      'cluster-4',
      relay.node.addresses.find((a) => a.startsWith('tcp://')),
    );
    let delivered = 0;
    const sink = cluster.spawn(
      async (self) => {
        for (;;) {
          await self.receive();
          delivered++;
        }
      },
      { name: 'sink' },
    );
    const cred = await getCredential(relay.url);
    const refused = relay.node.events.next('protocolError');
    // The cluster secret is not the page credential either.
    for (const secret of ['not-the-credential', SECRET]) {
      const page = pageNode(`bad-page-${secret.length}`, { secret });
      const err = await rejection(page.connect(cred.ws));
      expect(err.code).toBe('UNAUTHORIZED');
      page.send(page.ref('cluster-4', sink.id), 'should never arrive');
      expect(page.peers()).toEqual([]);
    }
    expect((await refused).error.code).toBe('UNAUTHORIZED');
    expect(relay.node.peers()).toEqual(['cluster-4']);
    expect(delivered).toBe(0);
  });

  it('refuses WebSocket upgrades without a valid, unexpired token, or from a disallowed origin', async () => {
    const relay = await relayUp({ credentialTtl: 400 });
    const cred = await getCredential(relay.url);
    const bare = cred.ws.replace(/\?.*$/, '');
    const [expiry, ns, mac] = cred.token.split('.');
    const forged = `${bare}?token=${Number(expiry) + 3_600_000}.${ns}.${mac}`;
    expect(await tryUpgrade(cred.ws, { Origin: PAGE_ORIGIN })).toBe('open');
    expect(await tryUpgrade(cred.ws)).toBe('open'); // non-browser clients send no Origin
    expect(await tryUpgrade(bare)).toBe('403');
    expect(await tryUpgrade(forged)).toBe('403');
    expect(await tryUpgrade(cred.ws, { Origin: 'http://evil.example' })).toBe('403');
    expect(await tryUpgrade(cred.ws, { Host: 'evil.example' })).toBe('403');
    // Through a node: the transport reports the refusal as TRANSPORT_CLOSED.
    expect((await rejection(pageNode('tokenless', cred).connect(bare))).code).toBe(
      'TRANSPORT_CLOSED',
    );
    // After expiresAt the same credential no longer opens a link.
    await until(() => Date.now() > cred.expiresAt + 20, 'the credential expired', 2000);
    expect(await tryUpgrade(cred.ws, { Origin: PAGE_ORIGIN })).toBe('403');
    const late = pageNode('late-page', cred);
    expect((await rejection(late.connect(cred.ws))).code).toBe('TRANSPORT_CLOSED');
    // A fresh credential works again.
    const fresh = await getCredential(relay.url);
    expect(await pageNode('fresh-page', fresh).connect(fresh.ws)).toBe(relay.node.id);
  });

  it('gives no credential to a disallowed Origin, a foreign Host, or a cross-site request without Origin', async () => {
    const relay = await relayUp();
    const evil = await fetch(`${relay.url}/troupe/credential`, {
      headers: { Origin: 'http://evil.example' },
    });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const body = await evil.text();
    expect(body).not.toMatch(/secret|token/i);
    const preflight = await fetch(`${relay.url}/troupe/credential`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'GET' },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    // Loopback origins on any port and scheme are allowed by default; a look-alike host is not.
    for (const origin of ['http://localhost:3000', 'https://127.0.0.1:8443', 'http://[::1]:5173'])
      await getCredential(relay.url, origin);
    expect(
      (
        await fetch(`${relay.url}/troupe/credential`, {
          headers: { Origin: 'http://127.0.0.1.evil.example' },
        })
      ).status,
    ).toBe(403);
    // DNS rebinding: the right address under a foreign name.
    const port = new URL(relay.url).port;
    expect(
      (await rawGet(`${relay.url}/troupe/credential`, { Host: `evil.example:${port}` })).status,
    ).toBe(403);
    expect(
      (await rawGet(`${relay.url}/troupe/credential`, { 'Sec-Fetch-Site': 'cross-site' })).status,
    ).toBe(403);
    // Same-origin requests carry no Origin: answered, without CORS headers.
    const same = await rawGet(`${relay.url}/troupe/credential`, {
      'Sec-Fetch-Site': 'same-origin',
    });
    expect(same.status).toBe(200);
    expect(same.headers['access-control-allow-origin']).toBeUndefined();
    // The peer list is gated the same way.
    expect(
      (await fetch(`${relay.url}/troupe/peers`, { headers: { Origin: 'http://evil.example' } }))
        .status,
    ).toBe(403);
  });

  it('--allow-origin replaces the loopback default', async () => {
    const relay = await relayUp({ allowOrigins: ['https://app.example'] });
    const cred = await getCredential(relay.url, 'https://app.example');
    expect(
      (await fetch(`${relay.url}/troupe/credential`, { headers: { Origin: PAGE_ORIGIN } })).status,
    ).toBe(403);
    expect(await tryUpgrade(cred.ws, { Origin: 'https://app.example' })).toBe('open');
    expect(await tryUpgrade(cred.ws, { Origin: PAGE_ORIGIN })).toBe('403');
  });
});

describe('relay (troupe relay process)', () => {
  const ROOT = fileURLToPath(new URL('../', import.meta.url));
  const CLI = fileURLToPath(new URL('../bin/troupe.mjs', import.meta.url));
  const PRELOAD = new URL('./helpers/exit-with-parent.mjs', import.meta.url).href;

  /** `troupe …` as a child; `preload` (default) makes it exit when this process dies. */
  function startCli(
    args: string[],
    preload = true,
  ): { proc: ChildProcess; lines: string[]; line(re: RegExp): Promise<RegExpMatchArray> } {
    const proc = spawn(
      process.execPath,
      [...(preload ? ['--import', PRELOAD] : []), CLI, ...args],
      {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, TROUPE_SECRET: '', NODE_OPTIONS: '' },
      },
    );
    cleanups.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const lines: string[] = [];
    const waiters = new Set<() => void>();
    let rest = '';
    const onData = (chunk: Buffer) => {
      const parts = (rest + chunk.toString('utf8')).split('\n');
      rest = parts.pop()!;
      lines.push(...parts);
      for (const w of [...waiters]) w();
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const line = (re: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          for (const l of lines) {
            const m = re.exec(l);
            if (m) {
              waiters.delete(check);
              clearTimeout(timer);
              return resolve(m);
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no line matching ${re} in:\n${lines.join('\n')}`));
        }, 15_000);
        waiters.add(check);
        check();
      });
    return { proc, lines, line };
  }

  it('prints its addresses, serves credentials, and relays between a page and a cluster node; dies by SIGKILL', async () => {
    const cluster = await tcpNode('cluster-5');
    cluster.spawn(
      async (self) => {
        for (;;) self.reply(((await self.receive(z.number())) as number) + 1);
      },
      { name: 'inc' },
    );
    const relay = startCli([
      'relay',
      '--listen',
      '127.0.0.1:0',
      '--secret',
      SECRET,
      '--seed',
      cluster.addresses[0].slice('tcp://'.length),
      '--name',
      'relay-cli',
      '--quiet',
    ]);
    const [, id, addrs] = await relay.line(/^listening (\S+) (.+)$/);
    expect(id).toBe('relay-cli');
    expect(addrs).toMatch(/tcp:\/\/127\.0\.0\.1:\d+/);
    expect(addrs).toMatch(/ws:\/\/127\.0\.0\.1:\d+\/troupe/);
    const [, url] = await relay.line(/^relay (http:\/\/\S+) /);
    const cred = await getCredential(url);
    const page = pageNode('page-5', cred);
    expect(await page.connect(cred.ws)).toBe('relay-cli');
    await until(
      () => page.whereis('inc') !== undefined,
      'the name "inc" replicated to the page through the relay process',
      10_000,
    );
    expect(await page.call('inc', 41)).toBe(42);
    const pageActor = page.spawn(async (self) => {
      for (;;) await self.receive();
    });
    await until(() => cluster.isReachable('page-5'), 'the page reachable from the cluster', 5000);
    const down = new Promise<{ reason: unknown }>((resolve) =>
      cluster.watch(cluster.ref('page-5', pageActor.id), resolve),
    );
    const alive = cluster.spawn(async (self) =>
      self
        .call(cluster.ref('page-5', pageActor.id), 'ping', { timeout: 300 })
        .catch((e: TroupeError) => e.code),
    );
    expect((await cluster.waitDown(alive)).result).toBe('TIMEOUT'); // reachable and alive: the call got there, nobody answers
    relay.proc.kill('SIGKILL');
    expect((await down).reason).toBe('noconnection');
  });

  it('troupe relay --help describes the endpoints and options', async () => {
    const help = startCli(['relay', '--help'], false);
    await help.line(/GET \/troupe\/credential/);
    await help.line(/--allow-origin ORIGIN/);
    await new Promise((resolve) => help.proc.once('exit', resolve));
    expect(help.proc.exitCode).toBe(0);
  });
});

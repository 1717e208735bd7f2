// Nodes linked over real WebSockets on 127.0.0.1: a Node node listening with the `ws` server
// transport, another dialing with the browser-side transport (over `ws`'s client). Calls both
// ways, a wrong secret refused on both sides, a transport's own secret (a relay's page
// credential), a dialing leaf reaching a third node through the one it dialed, and a lost link
// seen as DOWN noconnection.
import { describe, expect, it } from 'vitest';
import { isDown, type ActorRef, type Down, type Node } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { createWebSocketTransport } from '../adapters/websocket.ts';
import { createWebSocketServerTransport } from '../adapters/websocket-server.ts';
import { StandardWebSocket } from './fixtures/websocket-pair.ts';
import { rejects, until, useNodes, within } from './helpers/nodes.ts';

describe('nodes over WebSocket', () => {
  const makeNode = useNodes();

  /** A node listening on ws://127.0.0.1:<free>/troupe; resolves with it and its address. */
  async function server(name: string, secret: string, transportSecret?: string) {
    const node = makeNode({
      name,
      secret,
      transports: [createWebSocketServerTransport({ secret: transportSecret })],
    });
    const [address] = await node.listen();
    return { node, address };
  }

  /** A node that dials with the standard WebSocket API, as a page does. */
  function page(name: string, secret: string, transportSecret?: string): Node {
    return makeNode({
      name,
      secret,
      transports: [
        createWebSocketTransport({ WebSocket: StandardWebSocket, secret: transportSecret }),
      ],
    });
  }

  const echo = (node: Node) =>
    node.spawn(async (self) => {
      for (;;) self.reply({ echo: await self.receive(), at: node.id });
    });

  it('links, and calls go through both ways, with refs that cross', async () => {
    const { node: relay, address } = await server('relay', 'cluster');
    const browser = page('browser', 'cluster');
    expect(await browser.connect(address)).toBe('relay');
    await until(() => relay.peers().includes('browser'), 'the relay has the link up too');
    expect(relay.peers()).toEqual(['browser']);
    const onRelay = echo(relay);
    const onBrowser = echo(browser);
    expect(await browser.call(onRelay, 'to the relay')).toEqual({
      echo: 'to the relay',
      at: 'relay',
    });
    expect(await relay.call(onBrowser, 'to the page')).toEqual({
      echo: 'to the page',
      at: 'browser',
    });
    // a page actor hands its ref to the relay, which answers through it
    const asker = relay.spawn(async (self) => {
      const m = (await self.receive()) as { replyTo: ActorRef; n: number };
      m.replyTo.send(m.n * 10);
    });
    const answer = await new Promise((resolve) => {
      browser.spawn(async (self) => {
        asker.send({ replyTo: self.ref, n: 4 });
        resolve(await self.receive());
      });
    });
    expect(answer).toBe(40);
  });

  it('refuses a wrong secret: the dial rejects UNAUTHORIZED and both sides report it', async () => {
    const { node: relay, address } = await server('relay', 'right');
    const browser = page('browser', 'wrong');
    const [onRelay, onBrowser] = [
      relay.events.next('protocolError'),
      browser.events.next('protocolError'),
    ];
    await rejects(browser.connect(address), 'UNAUTHORIZED', 'a dial with the wrong secret');
    expect((await within(onRelay, 'the relay reports it')).error.code).toBe('UNAUTHORIZED');
    expect((await within(onBrowser, 'the page reports it')).error.code).toBe('UNAUTHORIZED');
    expect(relay.peers()).toEqual([]);
    expect(browser.peers()).toEqual([]);
  });

  it('a transport secret (a page credential) replaces the node secret for links through it only', async () => {
    const { node: relay, address } = await server('relay', 'cluster-secret', 'page-credential');
    const inner = makeNode({ name: 'inner', secret: 'cluster-secret' });
    await connectMemory(relay, inner); // the cluster side still proves the node secret

    const good = page('good', 'unrelated', 'page-credential');
    expect(await good.connect(address)).toBe('relay');

    const bad = page('bad', 'cluster-secret'); // knows the cluster secret, not the credential
    const refused = relay.events.next('protocolError');
    await rejects(bad.connect(address), 'UNAUTHORIZED', 'a page without the credential');
    expect((await refused).error.code).toBe('UNAUTHORIZED');

    // the page is a leaf behind the relay: it reaches `inner` through it, and is reached back
    const onInner = echo(inner);
    expect(await good.call(onInner, 'hop')).toEqual({ echo: 'hop', at: 'inner' });
    good.spawn(
      async (self) => {
        for (;;) self.reply({ echo: await self.receive(), at: good.id });
      },
      { name: 'page-echo' },
    );
    await until(() => inner.whereis('page-echo') !== undefined, 'the name is known');
    expect(await inner.call('page-echo', 'back')).toEqual({ echo: 'back', at: 'good' });
  });

  it('a lost link: monitors on the relay get DOWN noconnection, pending calls NODE_DOWN', async () => {
    const { node: relay, address } = await server('relay', 's');
    const browser = page('browser', 's');
    await browser.connect(address);
    await until(() => relay.isReachable('browser'), 'the page is reachable from the relay');
    const silent = browser.spawn(async (self) => {
      await self.receive((m): m is never => false);
    });
    const down = new Promise<Down>((resolve) => {
      relay.spawn(async (self) => {
        self.monitor(silent);
        resolve((await self.receive(isDown)) as Down);
      });
    });
    const pending = relay.call(silent, 'no answer', { timeout: 60_000 });
    browser.disconnect('relay');
    expect((await within(down, 'DOWN')).reason).toBe('noconnection');
    await rejects(pending, 'NODE_DOWN', 'the pending call');
  });
});

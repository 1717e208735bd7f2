// Core's discovery hook (`createNode({ discovery })`, core/discovery.ts): what the node does with
// what a discovery reports, independent of multicast. A fake discovery shares a board in memory;
// the links are real TCP on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import {
  createNode,
  type Discovery,
  type Node,
  type NodeOptions,
  type Transport,
} from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { eventually, within } from './dist-fixtures.ts';

/** Every node on the board hears every other one each `announce()`. */
function board() {
  const members = new Map<Node, (id: string, addrs: string[]) => void>();
  return {
    discovery(log: string[] = []): Discovery {
      let me: Node | undefined;
      return {
        name: 'board',
        start(node, found) {
          log.push('start');
          me = node;
          members.set(node, found);
        },
        stop() {
          log.push('stop');
          if (me) members.delete(me);
        },
      };
    },
    announce() {
      for (const [a, found] of members)
        for (const b of members.keys()) if (a !== b && b.addresses.length) found(b.id, b.addresses);
    },
  };
}

/** A TCP transport that counts dials. */
function counting(): Transport & { dials: string[] } {
  const t = createTcpTransport({ listen: '127.0.0.1:0' });
  const dials: string[] = [];
  return Object.assign(Object.create(t) as Transport, {
    dials,
    name: t.name,
    canConnect: (a: string) => t.canConnect(a),
    connect: (a: string) => {
      dials.push(a);
      return t.connect(a);
    },
    listen: t.listen!.bind(t),
    close: () => t.close(),
  });
}

describe('discovery hook', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  });
  const make = async (options: NodeOptions, listen = true) => {
    const n = createNode(options);
    nodes.push(n);
    if (listen) await n.listen();
    return n;
  };

  it('dials what a discovery reports, once, even with autoConnect off; stops it on shutdown', async () => {
    const b = board();
    const logA: string[] = [];
    const ta = counting();
    const a = await make({
      name: 'a',
      secret: 's',
      transports: [ta],
      discovery: b.discovery(logA),
      autoConnect: false,
    });
    const c = await make({
      name: 'c',
      secret: 's',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      discovery: [b.discovery()],
      autoConnect: false,
    });
    await eventually(() => logA.includes('start'), 'started');
    for (let i = 0; i < 5; i++) b.announce();
    await eventually(() => a.peers().includes('c') && c.peers().includes('a'), 'a and c linked');
    for (let i = 0; i < 5; i++) b.announce(); // linked: nothing more to dial
    // Both heard each other, so at most one dial each way (core keeps one link).
    expect(ta.dials.length).toBeLessThanOrEqual(1);
    expect(a.peers()).toEqual(['c']);
    await a.shutdown();
    expect(logA).toEqual(['start', 'stop']);
  });

  it('a node behind another secret is dialed, refused by the handshake, and not redialed at once', async () => {
    const b = board();
    const ta = counting();
    const a = await make({ name: 'a2', secret: 'one', transports: [ta], discovery: b.discovery() });
    const refused = a.events.next('protocolError');
    await make({
      name: 'x2',
      secret: 'two',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      discovery: b.discovery(),
    });
    await new Promise((r) => setTimeout(r, 0));
    b.announce();
    expect((await within(refused, 'the refusal', 5000)).error.code).toBe('UNAUTHORIZED');
    await eventually(() => ta.dials.length === 1, 'one dial');
    for (let i = 0; i < 5; i++) b.announce();
    expect(ta.dials.length).toBe(1); // a failed dial is paced (5 s)
    expect(a.peers()).toEqual([]);
  });

  it('linkUp/linkDown pair up per peer (the peer up/down stream), also when a peer restarts under its name', async () => {
    const a = await make({
      name: 'pa',
      secret: 's',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    });
    const seen: string[] = [];
    a.events.on('linkUp', (e) => seen.push(`up ${e.node}`));
    a.events.on('linkDown', (e) => seen.push(`down ${e.node} ${e.reason}`));
    // The old incarnation links by attach (no redial after its link is dropped, as if it had died).
    const x1 = await make({ name: 'px', secret: 's' }, false);
    const dialer = createTcpTransport();
    await x1.attach(await dialer.connect(a.addresses[0]), true);
    // A new incarnation of px links while a still holds the old link (as after a quick restart).
    const x2 = await make({
      name: 'px',
      secret: 's',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    });
    await x2.connect(a.addresses[0]);
    await eventually(() => seen.length >= 3, 'three link events');
    expect(seen).toEqual(['up px', 'down px peer restarted', 'up px']);
    expect(a.peers()).toEqual(['px']);
    await dialer.close();
  });

  it('reports a discovery that fails to start, and never starts one after shutdown', async () => {
    const failing: Discovery = {
      name: 'broken',
      start: () => Promise.reject(new Error('port in use')),
      stop: () => {},
    };
    const n = await make({ name: 'f', discovery: failing }, false);
    const e = await within(n.events.next('discoveryError'), 'the discoveryError', 2000);
    expect(e.discovery).toBe('broken');
    expect(e.error.message).toBe('port in use');

    const log: string[] = [];
    const d: Discovery = {
      name: 'late',
      start: () => void log.push('start'),
      stop: () => void log.push('stop'),
    };
    const m = createNode({ name: 'g', discovery: d });
    await m.shutdown();
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual([]);
  });
});

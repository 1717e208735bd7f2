// troupe/broadcast-channel in Node (Node ≥ 18 has a global BroadcastChannel, same semantics as the
// browser's within one process): the shared transport contract over a dialed pair, dialing
// nobody, and nodes that find each other with broadcastDiscovery and link with the handshake.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Connection, type Node } from '../core/index.ts';
import {
  broadcastDiscovery,
  createBroadcastChannelTransport,
  type BroadcastChannelTransport,
} from '../adapters/broadcast-channel.ts';
import { runTransportContract } from './transport-contract.ts';
import { eventually, within } from './dist-fixtures.ts';

const rnd = () => Math.random().toString(36).slice(2, 10);

runTransportContract('broadcast-channel', async () => {
  const ta = createBroadcastChannelTransport({ id: `a-${rnd()}` });
  const tb = createBroadcastChannelTransport({ id: `b-${rnd()}` });
  let accepted!: (c: Connection) => void;
  const b = new Promise<Connection>((resolve) => (accepted = resolve));
  expect(await tb.listen!((c) => accepted(c))).toEqual([`bc://${tb.id}`]);
  const a = await ta.connect(`bc://${tb.id}`);
  return { a, b: await b, cleanup: () => Promise.all([ta.close(), tb.close()]).then(() => {}) };
});

describe('broadcast-channel transport', () => {
  it('a dial to an id nobody listens on fails with TRANSPORT_CLOSED after connectTimeout', async () => {
    const t = createBroadcastChannelTransport({ connectTimeout: 200 });
    await expect(t.connect(`bc://nobody-${rnd()}`)).rejects.toMatchObject({
      code: 'TRANSPORT_CLOSED',
    });
    expect(t.canConnect('bc://x')).toBe(true);
    expect(t.canConnect('tcp://127.0.0.1:1')).toBe(false);
    await t.close();
  });
});

describe('broadcastDiscovery', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  });

  const make = async (
    name: string,
    channel: string,
    secret = 'bc-secret',
    cluster = 'bc-test',
  ): Promise<Node> => {
    const t: BroadcastChannelTransport = createBroadcastChannelTransport({ id: name });
    const node = createNode({
      name,
      secret,
      transports: [t],
      discovery: broadcastDiscovery({ channel, cluster, interval: 200 }),
      heartbeatInterval: 200,
      heartbeatTimeout: 5000,
    });
    nodes.push(node);
    expect(await node.listen()).toEqual([`bc://${name}`]);
    return node;
  };

  it('three nodes find and link each other with no seeds; calls cross; a node shutting down is seen leaving', async () => {
    const channel = `troupe:discovery:${rnd()}`;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => make(`${n}-${rnd()}`, channel)));
    await eventually(
      () => [a, b, c].every((n) => n.peers().length === 2),
      'every node linked to the other two',
    );
    expect(a.peers().sort()).toEqual([b.id, c.id].sort());

    c.spawn(
      async (self) => {
        for (;;) {
          const m = await self.receive(
            (x): x is { n: number } => typeof (x as { n?: unknown })?.n === 'number',
          );
          self.reply(m.n * 2);
        }
      },
      { name: `doubler-${c.id}` },
    );
    await eventually(
      () => a.whereis(`doubler-${c.id}`) !== undefined,
      'the name registered on c known at a',
    );
    expect(await within(a.call(`doubler-${c.id}`, { n: 21 }), 'a call a → c', 5000)).toBe(42);

    const down = a.events.next('nodeDown', (e) => e.node === c.id);
    await c.shutdown();
    nodes.splice(nodes.indexOf(c), 1);
    await within(down, 'a sees c leave', 5000);
    expect(a.peers()).toEqual([b.id]);
  });

  it('hears a node with another secret but never links to it; another cluster is not even dialed', async () => {
    const channel = `troupe:discovery:${rnd()}`;
    const a = await make(`a-${rnd()}`, channel);
    const stranger = await make(`s-${rnd()}`, channel, 'another-secret');
    const other = await make(`o-${rnd()}`, channel, 'bc-secret', 'other-cluster');
    const b = await make(`b-${rnd()}`, channel);
    await eventually(() => a.peers().includes(b.id), 'a linked to b');
    // Several announcement rounds later, still not linked to the stranger nor the other cluster.
    await new Promise((r) => setTimeout(r, 1000));
    expect(a.peers()).toEqual([b.id]);
    expect(stranger.peers()).toEqual([]);
    expect(other.peers()).toEqual([]);
  });

  it('finds nodes in worker_threads of this process; a terminated thread is seen down by the heartbeat', async () => {
    const channel = `troupe:discovery:${rnd()}`;
    const main = await make(`m-${rnd()}`, channel);
    const names = [`t1-${rnd()}`, `t2-${rnd()}`];
    const threads = names.map(
      (name) =>
        new Worker(new URL('./fixtures/tsx-worker.mjs', import.meta.url), {
          workerData: {
            entry: new URL('./fixtures/bc-thread-worker.ts', import.meta.url).href,
            name,
            channel,
            secret: 'bc-secret',
          },
        }),
    );
    try {
      await eventually(
        () => names.every((n) => main.peers().includes(n)),
        'main linked to both threads',
        20_000,
      );
      await eventually(
        () => main.whereis(`echo-${names[1]}`) !== undefined,
        'the thread name known at main',
      );
      expect(
        await within(main.call(`echo-${names[1]}`, 'hi'), 'a call main → thread', 5000),
      ).toEqual({ echo: 'hi', by: names[1] });
      const down = main.events.next('nodeDown', (e) => e.node === names[0]);
      await threads[0].terminate();
      await within(down, 'main sees the terminated thread down', 10_000);
      expect(main.peers()).toEqual([names[1]]);
    } finally {
      await Promise.all(threads.map((t) => t.terminate()));
    }
  }, 30_000);
});

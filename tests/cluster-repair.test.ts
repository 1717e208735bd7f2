// The mesh repairs itself (real `troupe node` processes over TCP on 127.0.0.1, real signals):
// - a dial that failed once (a handshake timing out: the peer was frozen) is retried by the
//   periodic repair pass after membership gossip has gone quiet, so the mesh completes;
// - a node reached only through an intermediate that dies is dialed directly before it would be
//   declared down: it never goes down, while the intermediate does.
import { describe, expect, it } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { eventually, SECRET, useCluster } from './helpers/cluster.ts';

const cluster = useCluster();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mesh repair (real processes)', () => {
  it('a failed dial is retried once gossip is quiet: the mesh completes', async () => {
    const seed = await cluster.start({ name: 'rp-seed', heartbeatTimeout: 6000 });
    // b never dials on its own: only the test node's dial can link the two.
    const b = await cluster.start({
      name: 'rp-b',
      seeds: [seed.hostPort],
      heartbeatTimeout: 6000,
      autoConnect: false,
    });
    await seed.waitForLine(/link up: rp-b /, 'the seed links rp-b');
    const t = await cluster.node({
      name: 'rp-test',
      handshakeTimeout: 800,
      heartbeatTimeout: 6000,
      heartbeatInterval: 500,
    });
    const failures: string[] = [];
    t.events.on('linkDown', (e) => failures.push(`${e.node || e.label}: ${e.reason}`));
    b.freeze(); // the test node's dial to b (learned from the seed's gossip) times out in its handshake
    await t.join(seed.address);
    await eventually(() => t.nodes().includes('rp-b'), 'rp-b reachable through the seed', 5000);
    await sleep(1500);
    expect(t.peers()).not.toContain('rp-b');
    b.thaw();
    // Nothing gossips any more; the repair pass dials again (backoff ~1 s, pass every ~2 s).
    await eventually(
      () => t.peers().includes('rp-b'),
      'a direct link to rp-b made by the repair pass',
      15_000,
    );
  });

  it('a node only routed through a dying intermediate is dialed directly and never declared down', async () => {
    const seed = await cluster.start({ name: 'rs-seed', heartbeatTimeout: 6000 });
    const b = await cluster.start({
      name: 'rs-b',
      seeds: [seed.hostPort],
      heartbeatTimeout: 6000,
      autoConnect: false,
    });
    await seed.waitForLine(/link up: rs-b /, 'the seed links rs-b');
    const t = await cluster.node({
      name: 'rs-test',
      handshakeTimeout: 800,
      heartbeatTimeout: 6000,
      heartbeatInterval: 500,
    });
    const downs: string[] = [];
    t.events.on('nodeDown', (e) => downs.push(e.node));
    b.freeze(); // the first direct dial fails: rs-b is reachable through the seed only
    await t.join(seed.address);
    await eventually(() => t.nodes().includes('rs-b'), 'rs-b reachable through the seed', 5000);
    await sleep(900);
    expect(t.peers()).not.toContain('rs-b');
    // The intermediate dies while rs-b is still routed through it; rs-b wakes up just after.
    await seed.kill('SIGKILL');
    await sleep(200);
    b.thaw();
    await eventually(() => downs.includes('rs-seed'), 'the seed declared down', 8000);
    await eventually(() => t.peers().includes('rs-b'), 'a direct link to rs-b', 8000);
    await sleep(1000);
    expect(downs).toEqual(['rs-seed']);
    expect(t.nodes()).toContain('rs-b');
  });

  it('a node joining a mesh dials its members a few at a time (at most 8 automatic dials at once) and links to all', async () => {
    const nodes: Node[] = [];
    try {
      const make = (name: string) => {
        const t = createTcpTransport({ listen: '127.0.0.1:0' });
        const n = createNode({ name, secret: SECRET, transports: [t] });
        nodes.push(n);
        return { n, t };
      };
      const seed = make('cap-seed');
      const [seedAddr] = await seed.n.listen();
      const members = Array.from({ length: 14 }, (_, i) => make(`cap-${i}`));
      for (const m of members) await m.n.listen();
      await Promise.all(members.map((m) => m.n.join(seedAddr!)));
      await eventually(
        () => members.every((m) => m.n.peers().length === 14),
        'the 15-node mesh',
        20_000,
      );
      // The newcomer learns 14 members from the seed's gossip at once.
      const late = make('cap-late');
      let inFlight = 0;
      let most = 0;
      const connect = late.t.connect.bind(late.t);
      late.t.connect = async (address: string) => {
        most = Math.max(most, ++inFlight);
        try {
          return await connect(address);
        } finally {
          inFlight--;
        }
      };
      await late.n.listen();
      await late.n.join(seedAddr!);
      await eventually(() => late.n.peers().length === 15, 'the newcomer linked to all 15', 20_000);
      // The join's own dial, plus at most 8 automatic ones (members also dial it: fewer here).
      expect(most).toBeLessThanOrEqual(9);
    } finally {
      await Promise.all(nodes.map((n) => n.shutdown().catch(() => {})));
    }
  });
});

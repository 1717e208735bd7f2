// Issue 11, item 6 — a member's registry flood: capped per peer with events, legitimate calls keep
// working, and no healthy peer is declared down for missed heartbeats while the flood is processed.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { MAX_NAMES_PER_PEER } from '../core/router.ts';
import { RawTcpClient } from './helpers/cluster.ts';

const SECRET = 'security-registry';
const nodes: Node[] = [];
const raws: RawTcpClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

function frame(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

describe('registry flood from a member', () => {
  it(`names for nodes that do not exist: capped at ${MAX_NAMES_PER_PEER} per peer with events; a friend's calls keep working; nobody is declared down`, async () => {
    const opts = {
      secret: SECRET,
      autoConnect: false,
      heartbeatInterval: 200,
      heartbeatTimeout: 1000,
    };
    const target = createNode({
      name: 'reg-target',
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      ...opts,
    });
    const friend = createNode({ name: 'reg-friend', transports: [createTcpTransport()], ...opts });
    nodes.push(target, friend);
    const [address] = await target.listen();
    await friend.connect(address);
    const echo = target.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    const remote = friend.ref(echo.node, echo.id);
    const refused: string[] = [];
    target.events.on('protocolError', (e) => refused.push(e.error.message));
    const downs: string[] = [];
    target.events.on('nodeDown', (e) => downs.push(`target lost ${e.node}: ${e.reason}`));
    friend.events.on('nodeDown', (e) => downs.push(`friend lost ${e.node}: ${e.reason}`));

    const flooder = await RawTcpClient.connect(address.replace('tcp://', ''));
    raws.push(flooder);
    await flooder.handshake('flooder', SECRET);
    // The flooder keeps its own link alive (heartbeats) and reads what it is sent.
    const beats = setInterval(() => flooder.sendFrames('{"t":"hb"}'), 200);
    const FLOOD = 80_000;
    const latencies: number[] = [];
    const failures: string[] = [];
    let stop = false;
    const caller = (async () => {
      while (!stop) {
        const t0 = performance.now();
        try {
          await remote.call('ping', { timeout: 10_000 });
          latencies.push(performance.now() - t0);
        } catch (err) {
          failures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      for (let i = 0; i < FLOOD; i += 2000) {
        const batch: string[] = [];
        for (let j = i; j < i + 2000; j++)
          batch.push(`{"t":"ga","g":"ghost-name-${j}","x":"ghost-${j}","a":1}`);
        flooder.socket.write(frame(batch.join('\n')));
        await new Promise((r) => setImmediate(r));
      }
      const until = Date.now() + 30_000;
      while (refused.length < FLOOD - MAX_NAMES_PER_PEER && Date.now() < until)
        await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1500)); // a heartbeat timeout and more after the flood
    } finally {
      stop = true;
      clearInterval(beats);
      await caller;
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const p = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
    console.log(
      `registry flood: ${FLOOD} names from one member; target holds ${target.registered().size}, refused ${refused.length}; ` +
        `friend's calls: ${latencies.length}, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${p(1)} ms, failures ${failures.length}; downs ${JSON.stringify(downs)}`,
    );
    expect(refused.length).toBe(FLOOD - MAX_NAMES_PER_PEER);
    expect(refused[0]).toMatch(
      new RegExp(`flooder added ${MAX_NAMES_PER_PEER} names \\(the most one peer may\\)`),
    );
    expect(target.registered().size).toBeLessThanOrEqual(MAX_NAMES_PER_PEER);
    expect(failures).toEqual([]);
    expect(downs).toEqual([]);
    expect(friend.peers()).toEqual(['reg-target']);
    expect(await remote.call('after')).toBe('after');
  }, 60_000);
});

// Issue 11, item 6 — a member's registry flood: names for nodes it does not route for are refused
// and names for its own actors capped per peer, each with an event; legitimate calls keep their
// latency, and no healthy peer is declared down for missed heartbeats while the flood is processed.
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { MAX_NAMES_PER_PEER } from '../core/router.ts';
import { RawTcpClient } from './helpers/cluster.ts';
import { until } from './helpers/nodes.ts';

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
  it(`names for nodes that do not exist are refused, each with an event; names for its own actors are capped at ${MAX_NAMES_PER_PEER}; a friend's calls keep their latency; nobody is declared down`, async () => {
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
    // A name of the friend's own, which the target learns and keeps.
    const friendActor = friend.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    expect(friend.register('friend-echo', friendActor)).toBe(true);
    await until(() => target.whereis('friend-echo') !== undefined, 'the friend name', 5000);
    const remote = friend.ref(echo.node, echo.id);
    const unrouted: string[] = [];
    const capped: string[] = [];
    target.events.on('protocolError', (e) => {
      if (/which is not reached through it/.test(e.error.message)) unrouted.push(e.error.message);
      else if (/the most one peer may/.test(e.error.message)) capped.push(e.error.message);
    });
    const downs: string[] = [];
    target.events.on('nodeDown', (e) => downs.push(`target lost ${e.node}: ${e.reason}`));
    friend.events.on('nodeDown', (e) => downs.push(`friend lost ${e.node}: ${e.reason}`));

    const flooder = await RawTcpClient.connect(address.replace('tcp://', ''));
    raws.push(flooder);
    await flooder.handshake('flooder', SECRET);
    // The flooder keeps its own link alive (heartbeats) and reads what it is sent.
    const beats = setInterval(() => flooder.sendFrames('{"t":"hb"}'), 200);

    /** Flood `count` names made by `claim`, while the friend calls the target every 20 ms. */
    const flood = async (count: number, claim: (j: number) => string, settled: () => boolean) => {
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
        for (let i = 0; i < count; i += 2000) {
          const batch: string[] = [];
          for (let j = i; j < Math.min(count, i + 2000); j++) batch.push(claim(j));
          flooder.socket.write(frame(batch.join('\n')));
          await new Promise((r) => setImmediate(r));
        }
        const deadline = Date.now() + 30_000;
        while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        await new Promise((r) => setTimeout(r, 1500)); // a heartbeat timeout and more after the flood
      } finally {
        stop = true;
        await caller;
      }
      const sorted = [...latencies].sort((a, b) => a - b);
      const p = (q: number) =>
        sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
      return { calls: latencies.length, failures, p50: p(0.5), p99: p(0.99), max: p(1) };
    };

    try {
      // 1. Names for nodes that do not exist (issue 11: they were accepted up to the cap).
      const GHOSTS = 80_000;
      const a = await flood(
        GHOSTS,
        (j) => `{"t":"ga","g":"ghost-name-${j}","x":"ghost-${j}","a":1}`,
        () => unrouted.length >= GHOSTS,
      );
      console.log(
        `registry flood, ${GHOSTS} names for nodes that do not exist: refused ${unrouted.length} (events), target holds ${target.registered().size} names; ` +
          `friend's calls: ${a.calls}, p50 ${a.p50} ms, p99 ${a.p99} ms, max ${a.max} ms, failures ${a.failures.length}; downs ${JSON.stringify(downs)}`,
      );
      expect(unrouted.length).toBe(GHOSTS);
      expect(unrouted[0]).toMatch(
        /flooder claimed the name "ghost-name-0" for node "ghost-0", which is not reached through it/,
      );
      expect([...target.registered().keys()]).toEqual(['friend-echo']);
      expect(a.failures).toEqual([]);
      expect(downs).toEqual([]);

      // 2. Names for its own actors, which it may register: capped per peer.
      const OWN = MAX_NAMES_PER_PEER + 10_000;
      const b = await flood(
        OWN,
        (j) => `{"t":"ga","g":"own-name-${j}","x":"flooder","a":${j + 1}}`,
        () => capped.length >= OWN - MAX_NAMES_PER_PEER,
      );
      console.log(
        `registry flood, ${OWN} names for the flooder's own actors: target holds ${target.registered().size}, refused ${capped.length} past the cap; ` +
          `friend's calls: ${b.calls}, p50 ${b.p50} ms, p99 ${b.p99} ms, max ${b.max} ms, failures ${b.failures.length}; downs ${JSON.stringify(downs)}`,
      );
      expect(capped.length).toBe(OWN - MAX_NAMES_PER_PEER);
      expect(capped[0]).toMatch(
        new RegExp(`flooder added ${MAX_NAMES_PER_PEER} names \\(the most one peer may\\)`),
      );
      expect(target.registered().size).toBe(MAX_NAMES_PER_PEER + 1);
      expect(b.failures).toEqual([]);
    } finally {
      clearInterval(beats);
    }
    expect(downs).toEqual([]);
    expect(friend.peers()).toEqual(['reg-target']);
    expect(target.whereis('friend-echo')?.equals(friendActor)).toBe(true);
    expect(await remote.call('after')).toBe('after');
  }, 90_000);
});

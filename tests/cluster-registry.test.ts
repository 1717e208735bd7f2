// Issue 3 — the cluster registry under races and partitions, across processes: two nodes racing
// for one name end with one winner, the same on every node, and the loser is told; a partition
// (the link cut by a TCP proxy, both processes alive) lets each side register the same name, and
// after the heal the duplicates resolve the same way everywhere (the lower node id wins).
import { describe, expect, test } from 'vitest';
import { downOf, type ActorRef, type Node } from '../core/index.ts';
import { useCluster, eventually, within } from './helpers/cluster.ts';

const cluster = useCluster();
const HEARTBEAT_TIMEOUT = 1500;

/** What `node` sees registered as `name`, through an inspector actor there (null if nothing). */
async function viewOf(inspector: ActorRef, name: string): Promise<ActorRef | null> {
  return (await inspector.call({ op: 'whereis', name })) as ActorRef | null;
}

/** Wait until every view (test nodes directly, children through their inspectors) sees `expected` as `name`. */
async function allSee(
  name: string,
  expected: ActorRef,
  tests: Node[],
  inspectors: ActorRef[],
): Promise<void> {
  for (const t of tests)
    await eventually(
      () => t.whereis(name)?.equals(expected),
      `${t.id} to see ${name} as ${expected.key} (sees ${t.whereis(name)?.key})`,
    );
  for (const i of inspectors) {
    await eventually(
      async () => (await viewOf(i, name))?.equals(expected),
      `${i.node} to see ${name} as ${expected.key}`,
    );
  }
}

describe('cluster registry across processes', () => {
  test('two nodes race for one name: exactly one winner, the same on every node, and the loser learns it', async () => {
    const a = await cluster.start({ name: 'race-a' });
    const b = await cluster.start({ name: 'race-b', seeds: [a.hostPort] });
    const t = await cluster.node({ name: 'race-test' });
    await t.join(a.address);
    await eventually(() => t.peers().includes('race-b'), 'the test node to link to race-b');
    const inspectors = await Promise.all([t.spawn(a.id, 'inspector'), t.spawn(b.id, 'inspector')]);
    expect(await inspectors[0].call({ op: 'peers' })).toContain('race-b');

    // Each racer spawns a `named` there with a monitor (so a failed init reports its real
    // reason) and waits for its DOWN. Both requests leave in the same tick: each node registers
    // before it can hear of the other, unless the other's news is quicker than the request.
    const racer = (on: string) => {
      let spawned!: (r: ActorRef) => void;
      const ref = new Promise<ActorRef>((resolve) => (spawned = resolve));
      const actor = t.spawn(async (self) => {
        const r = await self.spawnOn(on, 'named', { name: 'race' }, { monitor: true });
        spawned(r);
        return (await self.receive(downOf(r))).reason;
      });
      let ended: unknown;
      t.waitDown(actor).then((d) => (ended = d.result ?? d.reason));
      return { ref, ended: () => ended };
    };
    const racers = [racer(a.id), racer(b.id)];
    const [onA, onB] = await within(
      Promise.all(racers.map((r) => r.ref)),
      'both spawns to answer',
      10_000,
    );
    const endOf = (r: ActorRef) => racers[r.equals(onA) ? 0 : 1].ended();

    const winner = await eventually(() => t.whereis('race'), 'the test node to see a winner');
    await allSee('race', winner, [t], inspectors);
    const loser = winner.equals(onA) ? onB : onA;
    const loserNode = loser.node === 'race-a' ? a : b;

    // The loser learns it: it registered too and got NAME_LOST (a true conflict: the lower node
    // id must have won), or it saw the name taken before registering and its init failed.
    const told = await eventually(() => {
      if (loserNode.matching(/named actor got NAME_LOST/).length) return 'NAME_LOST';
      const reason = endOf(loser);
      return reason === undefined ? undefined : `init failed: ${JSON.stringify(reason)}`;
    }, 'the loser to be told');
    if (told === 'NAME_LOST') expect(winner.node).toBe('race-a');
    else expect(told).toMatch(/name race is taken/);
    // The winner is alive and answers under the name, from every node.
    expect(endOf(winner)).toBeUndefined();
    expect(await t.call('race', 'who?')).toBe('who?');
    // Still one winner everywhere after the dust settled.
    await allSee('race', winner, [t], inspectors);
  });

  test('partition and heal through a fault proxy: each side registers the same name; after the heal the lower node id wins on both sides', async () => {
    // part-a ← proxy ← part-b is the only path between the sides (no auto-connect anywhere); a
    // test node on each side watches it: part-t1 linked to part-a only, part-t2 to part-b only.
    const a = await cluster.start({
      name: 'part-a',
      autoConnect: false,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
    });
    const proxy = await cluster.proxy(a.hostPort);
    const b = await cluster.start({
      name: 'part-b',
      autoConnect: false,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
      seeds: [proxy.hostPort],
    });
    const t1 = await cluster.node({
      name: 'part-t1',
      autoConnect: false,
      listen: false,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
    });
    const t2 = await cluster.node({
      name: 'part-t2',
      autoConnect: false,
      listen: false,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
    });
    await t1.connect(a.address);
    await t2.connect(b.address);
    const healed = async (what: string) => {
      await eventually(
        () => t1.isReachable('part-b') && t2.isReachable('part-a'),
        `each side to reach the other (${what})`,
        20_000,
      );
    };
    await healed('first link');
    const [ia, ib] = await Promise.all([t1.spawn(a.id, 'inspector'), t2.spawn(b.id, 'inspector')]);
    expect(await ia.call({ op: 'peers' })).toEqual(['part-b', 'part-t1']);
    expect(await ib.call({ op: 'peers' })).toEqual(['part-a', 'part-t2']);
    expect(proxy.accepted).toBe(1);

    // Partition 1: reset the link. Both sides see the other go down at once.
    const lost1 = Promise.all([
      t1.events.next('nodeDown', (e) => e.node === 'part-b'),
      t2.events.next('nodeDown', (e) => e.node === 'part-a'),
    ]);
    proxy.cut('reset');
    await within(lost1, 'both sides to lose the other', 10_000);

    // Each side registers "split"; each succeeds in its own half.
    const splitA = await t1.spawn(a.id, 'named', { name: 'split' });
    const splitB = await t2.spawn(b.id, 'named', { name: 'split' });
    await allSee('split', splitA, [t1], [ia]);
    await allSee('split', splitB, [t2], [ib]);

    // Heal: part-b's seed redial gets through; the registries merge; part-a's claim wins everywhere.
    const bMark = b.mark();
    proxy.restore();
    await healed('after the reset');
    expect(proxy.accepted).toBe(2); // the new link, through the proxy
    await allSee('split', splitA, [t1, t2], [ia, ib]);
    await b.waitForLine(
      /named actor got NAME_LOST/,
      'the loser (on part-b) to get NAME_LOST',
      10_000,
      bMark,
    );
    // The loser lives on without the name.
    expect(await splitB.call('still here')).toBe('still here');

    // Partition 2: a silent cut (bytes held, sockets open) — only heartbeats notice. part-b
    // registers first this time; the rule, not the order, decides.
    const lost2 = Promise.all([
      t1.events.next('nodeDown', (e) => e.node === 'part-b'),
      t2.events.next('nodeDown', (e) => e.node === 'part-a'),
    ]);
    proxy.cut('blackhole');
    await within(lost2, 'both sides to declare the other down by heartbeat timeout', 15_000);
    // part-a's names vanished from part-b's half while it cannot reach part-a.
    await eventually(
      () => t2.whereis('split') === undefined,
      'split to vanish from part-t2 during the partition',
    );
    expect(await viewOf(ib, 'split')).toBeNull();
    const second2B = await t2.spawn(b.id, 'named', { name: 'split2' });
    await allSee('split2', second2B, [t2], [ib]);
    const second2A = await t1.spawn(a.id, 'named', { name: 'split2' });
    await allSee('split2', second2A, [t1], [ia]);

    const bMark2 = b.mark();
    proxy.restore();
    await healed('after the blackhole');
    expect(proxy.accepted).toBe(3);
    await allSee('split2', second2A, [t1, t2], [ia, ib]);
    await allSee('split', splitA, [t1, t2], [ia, ib]);
    await b.waitForLine(
      /named actor got NAME_LOST/,
      'the second loser (on part-b) to get NAME_LOST',
      10_000,
      bMark2,
    );
    expect(await t2.call('split2', 'to the winner')).toBe('to the winner');
    // Still the only path: the two sides never linked directly.
    expect(await ia.call({ op: 'peers' })).toEqual(['part-b', 'part-t1']);
    expect(await ib.call({ op: 'peers' })).toEqual(['part-a', 'part-t2']);
  }, 60_000);
});

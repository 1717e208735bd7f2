// Issue 6 — process faults on real `troupe node` processes (bin/troupe.mjs, via
// tests/helpers/cluster.ts): SIGSTOP shorter than the heartbeat timeout loses nothing; SIGSTOP
// longer, then SIGCONT: the node is declared down, then rejoins — its names come back, a monitor
// that fired stays fired (exactly one DOWN), calls work again; SIGKILL mid-stream: what arrived
// is an exact prefix of what was sent (in order, no gap, no duplicate) and the node restarts
// and rejoins.
import { describe, expect, test } from 'vitest';
import { isDown, type ActorRef, type Down, type Node } from '../core/index.ts';
import type { SinkStats } from '../server/behaviours.ts';
import { useCluster, eventually, within, type ChildNode } from './helpers/cluster.ts';

const cluster = useCluster();
const HEARTBEAT_TIMEOUT = 1500;

async function startPair(prefix: string): Promise<{ a: ChildNode; b: ChildNode; t: Node }> {
  const a = await cluster.start({ name: `${prefix}-a`, heartbeatTimeout: HEARTBEAT_TIMEOUT });
  const b = await cluster.start({
    name: `${prefix}-b`,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    seeds: [a.hostPort],
  });
  const t = await cluster.node({ name: `${prefix}-test`, heartbeatTimeout: HEARTBEAT_TIMEOUT });
  await t.join(a.address);
  await eventually(() => t.peers().includes(b.id), `the test node to link to ${b.id}`);
  return { a, b, t };
}

/** Send `{ seq, pad }` for seq in [from, to) to `sink` from the test node, yielding now and then. */
async function stream(
  t: Node,
  sink: ActorRef,
  from: number,
  to: number,
  pad: (s: number) => string,
): Promise<void> {
  const ref = t.ref(sink.node, sink.id);
  for (let s = from; s < to; ) {
    const end = Math.min(to, s + 500);
    for (; s < end; s++) ref.send({ seq: s, pad: pad(s) });
    await new Promise((r) => setImmediate(r));
  }
}

describe('process faults', () => {
  test('SIGSTOP shorter than the heartbeat timeout, then SIGCONT: no node down, a stream across the freeze arrives complete, in order, once', async () => {
    const { b, t } = await startPair('pause');
    const { padFor } = await import('../server/behaviours.ts');
    const N = 30_000;
    const sink = await t.spawn(b.id, 'sink', { expect: N });
    const downs: string[] = [];
    t.events.on('nodeDown', (e) => downs.push(e.node));
    await stream(t, sink, 0, N / 2, padFor);
    b.freeze();
    await stream(t, sink, N / 2, N, padFor); // written while the process is stopped
    await new Promise((r) => setTimeout(r, HEARTBEAT_TIMEOUT / 3));
    b.thaw();
    const stats = await eventually(
      async () => {
        const s = (await sink.call({ op: 'stats' })) as SinkStats;
        return s.received === N ? s : undefined;
      },
      'every message to reach the thawed sink',
      20_000,
    );
    expect(stats).toEqual({ received: N, outOfOrder: 0, badPayload: 0, lastSeq: N - 1 });
    expect(downs).toEqual([]);
  }, 60_000);

  test('SIGSTOP past the heartbeat timeout, then SIGCONT: declared down, then it rejoins; its names come back; a monitor that fired stays fired', async () => {
    const { a, b, t } = await startPair('freeze');
    const victim = await t.spawn(b.id, 'named', { name: 'freeze-victim' });
    const aInspector = await t.spawn(a.id, 'inspector');
    await eventually(
      async () => (await aInspector.call({ op: 'whereis', name: 'freeze-victim' })) !== null,
      `${a.id} to see freeze-victim`,
    );
    // A watcher that counts every DOWN it gets for the victim.
    const downs: Down[] = [];
    t.spawn(async (self) => {
      self.monitor(victim);
      for (;;) downs.push((await self.receive(isDown)) as Down);
    });
    await new Promise((r) => setTimeout(r, 50));
    const lost = t.events.next('nodeDown', (e) => e.node === b.id);
    b.freeze();
    await within(lost, `${b.id} to be declared down`, 15_000);
    await eventually(() => downs.length === 1, 'the DOWN noconnection');
    expect(downs[0].reason).toBe('noconnection');
    expect(t.whereis('freeze-victim')).toBeUndefined();

    const back = t.events.next('nodeUp', (e) => e.node === b.id);
    b.thaw();
    await within(back, `${b.id} to come back`, 20_000);
    // Its actors lived on; its names come back to every node.
    await eventually(
      () => t.whereis('freeze-victim')?.equals(victim),
      'the name to come back on the test node',
      15_000,
    );
    await eventually(
      async () =>
        (
          (await aInspector.call({ op: 'whereis', name: 'freeze-victim' })) as ActorRef | null
        )?.equals(victim),
      `the name to come back on ${a.id}`,
      15_000,
    );
    expect(await victim.call('awake')).toBe('awake');
    // The monitor that fired is gone on both sides: the victim's death now sends no second DOWN.
    // (Fence: a fresh monitor's DOWN travels the same link after any stale one would have.)
    victim.kill();
    const fresh = await within(t.waitDown(victim), 'a fresh monitor of the killed victim', 10_000);
    expect(['killed', 'noproc']).toContain(fresh.reason);
    expect(downs).toHaveLength(1);
  }, 60_000);

  test('SIGKILL mid-stream: the sink holds an exact prefix of the stream (in order, no gap, no duplicate); the node restarts under its name and rejoins', async () => {
    const { a, b, t } = await startPair('kill');
    // The stream runs from the victim process (a source on b) to a sink on the test node.
    const seen: number[] = [];
    let notIncreasing = 0;
    const sink = t.spawn(async (self) => {
      for (;;) {
        const m = (await self.receive()) as { seq: number };
        if (seen.length && m.seq !== seen[seen.length - 1] + 1) notIncreasing++;
        seen.push(m.seq);
      }
    });
    const lost = t.events.next('nodeDown', (e) => e.node === b.id);
    await t.spawn(b.id, 'source', { to: sink, count: 5_000_000, burst: 500 });
    await eventually(() => seen.length > 20_000, 'the stream to be flowing');
    await b.kill('SIGKILL');
    await within(lost, `${b.id} to be declared down`, 15_000);
    await new Promise((r) => setTimeout(r, 100));
    const got = seen.length;
    expect(notIncreasing).toBe(0);
    expect(seen[0]).toBe(0);
    expect(seen[got - 1]).toBe(got - 1);
    expect(got).toBeLessThan(5_000_000);

    const b2 = await cluster.start({
      name: b.id,
      listen: b.hostPort,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
      seeds: [a.hostPort],
    });
    await eventually(() => t.peers().includes(b2.id), 'the restarted node to rejoin');
    const echo = await t.spawn(b2.id, 'echo');
    expect(await echo.call('reborn')).toBe('reborn');
    expect(seen.length).toBe(got); // nothing of the old life arrived after its death
  }, 60_000);
});

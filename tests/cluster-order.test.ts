// Issue 3 — 100k messages from one actor to another across TCP arrive complete and in order:
// between two processes on a direct link, and through a relay process in the middle.
import { describe, expect, test } from 'vitest';
import type { ActorRef, Node } from '../core/index.ts';
import type { SinkStats } from '../server/behaviours.ts';
import { useCluster, eventually, within } from './helpers/cluster.ts';

const cluster = useCluster();
const COUNT = 100_000;

/** A local actor that waits for the sink's report and ends with it. */
function reportInbox(t: Node): { ref: ActorRef; report: Promise<SinkStats> } {
  const ref = t.spawn(async (self) =>
    self.receive((m) => typeof m === 'object' && m !== null && 'received' in m),
  );
  return { ref, report: t.waitDown(ref).then((d) => d.result as SinkStats) };
}

/**
 * Start a `sink` on `to` and a `source` on `from` streaming {@link COUNT} messages to it (the
 * source yields to the event loop every 1000, so the stream crosses many writes and reads).
 * Resolves with the sink's count once all arrived.
 */
async function stream(
  t: Node,
  from: string,
  to: string,
): Promise<{ stats: SinkStats; sourceResult: unknown }> {
  const inbox = reportInbox(t);
  const sink = await t.spawn(to, 'sink', { expect: COUNT, report: inbox.ref });
  const source = await t.spawn(from, 'source', { to: sink, count: COUNT, burst: 1000 });
  const sourceDown = t.waitDown(source);
  const stats = await within(
    inbox.report,
    `${COUNT} messages to reach the sink on ${to}`,
    60_000,
  ).catch(async (err: Error) => {
    // Say how far it got.
    throw new Error(
      `${err.message}; sink stats: ${JSON.stringify(await sink.call({ op: 'stats' }).catch((e: Error) => e.message))}`,
    );
  });
  const down = await within(sourceDown, 'the source to end', 10_000);
  expect(down.reason).toBe('normal');
  // Nothing more than COUNT arrived afterwards either.
  expect(await sink.call({ op: 'stats' })).toEqual(stats);
  return { stats, sourceResult: down.result };
}

describe('ordering and completeness across processes', () => {
  test(`${COUNT} messages between two processes on a direct link arrive complete and in order`, async () => {
    const a = await cluster.start({ name: 'order-a' });
    const b = await cluster.start({ name: 'order-b', seeds: [a.hostPort] });
    const t = await cluster.node({ name: 'order-test' });
    await t.join(a.address);
    await eventually(() => t.peers().includes('order-b'), 'the test node to link to order-b');
    const inspectA = await t.spawn(a.id, 'inspector');
    expect(await inspectA.call({ op: 'peers' })).toContain('order-b');

    const { stats, sourceResult } = await stream(t, a.id, b.id);
    expect(sourceResult).toBe(COUNT);
    expect(stats).toEqual({ received: COUNT, outOfOrder: 0, badPayload: 0, lastSeq: COUNT - 1 });
  }, 90_000);

  test(`${COUNT} messages through a relay process arrive complete and in order (the endpoints have no direct link)`, async () => {
    const relay = await cluster.start({ name: 'relay-r' });
    const [e1, e2] = await Promise.all([
      cluster.start({ name: 'relay-e1', seeds: [relay.hostPort], autoConnect: false }),
      cluster.start({ name: 'relay-e2', seeds: [relay.hostPort], autoConnect: false }),
    ]);
    const t = await cluster.node({ name: 'relay-test', autoConnect: false, listen: false });
    await t.connect(relay.address);
    // The test node reaches both endpoints, through the relay only.
    await eventually(
      () => t.isReachable('relay-e1') && t.isReachable('relay-e2'),
      'the test node to learn the endpoints from the relay',
    );
    expect(t.peers()).toEqual(['relay-r']);

    const [i1, i2, ir] = await Promise.all([
      t.spawn(e1.id, 'inspector'),
      t.spawn(e2.id, 'inspector'),
      t.spawn(relay.id, 'inspector'),
    ]);
    await eventually(
      async () => ((await ir.call({ op: 'peers' })) as string[]).length === 3,
      'the relay to link to both endpoints and the test node',
    );
    expect(await i1.call({ op: 'peers' })).toEqual(['relay-r']);
    expect(await i2.call({ op: 'peers' })).toEqual(['relay-r']);

    const { stats } = await stream(t, e1.id, e2.id);
    expect(stats).toEqual({ received: COUNT, outOfOrder: 0, badPayload: 0, lastSeq: COUNT - 1 });

    // Still no shortcut: every one of those messages went through relay-r.
    expect(await i1.call({ op: 'peers' })).toEqual(['relay-r']);
    expect(await i2.call({ op: 'peers' })).toEqual(['relay-r']);
    expect(t.peers()).toEqual(['relay-r']);
  }, 90_000);
});

// Issue 3 — failure detection across processes: a node killed with SIGKILL (its sockets close)
// and a node frozen with SIGSTOP (its sockets stay open, only heartbeats can tell) are declared
// down within the failure-detection timeout; then every remote monitor gets `noconnection`,
// linked actors die (or get an exit message when trapping), pending calls reject with
// `NODE_DOWN`, and the node's names vanish. A restarted node rejoins under its old name.
import { describe, expect, test } from 'vitest';
import { isExit, TroupeError, type ActorRef, type Node } from '../core/index.ts';
import { useCluster, eventually, settleAll, within, type ChildNode } from './helpers/cluster.ts';

const cluster = useCluster();

/** The failure-detection timeout every node in these tests runs with (`--heartbeat-timeout`). */
const HEARTBEAT_TIMEOUT = 1500;
/** Heartbeats are checked every `heartbeatInterval` (core default 500 ms): detection can lag by one. */
const HEARTBEAT_INTERVAL = 500;
/**
 * Extra time allowed for the news to travel and for a loaded 2-CPU machine to run its timers
 * (other test files run in parallel). A correctness bound, not a benchmark: it proves detection
 * is driven by the timeout, not by some much longer fallback (a call's own 30 s timeout, TCP's
 * minutes-long keepalive).
 */
const MARGIN = 1500;
const DETECTION_BOUND = HEARTBEAT_TIMEOUT + HEARTBEAT_INTERVAL + MARGIN;

/** Spawn a local actor that waits for one message matching `pred` and ends with it as its result. */
function inbox(t: Node, pred: (m: unknown) => boolean): { ref: ActorRef; got: Promise<unknown> } {
  const ref = t.spawn(async (self) => self.receive(pred));
  return { ref, got: t.waitDown(ref).then((d) => d.result) };
}

async function startPair(): Promise<{ a: ChildNode; b: ChildNode; t: Node }> {
  const a = await cluster.start({ name: 'fail-a', heartbeatTimeout: HEARTBEAT_TIMEOUT });
  const b = await cluster.start({
    name: 'fail-b',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    seeds: [a.hostPort],
  });
  const t = await cluster.node({ name: 'fail-test', heartbeatTimeout: HEARTBEAT_TIMEOUT });
  await t.join(a.address);
  await eventually(() => t.peers().includes('fail-b'), 'the test node to link to fail-b');
  await b.waitForLine(/link up: fail-a /, 'its link to fail-a');
  return { a, b, t };
}

describe('node loss across processes', () => {
  test('SIGKILL: monitors, links (trapping or not), pending calls and names all settle within the detection timeout; the node restarts and rejoins', async () => {
    const { a, b, t } = await startPair();
    const nodeEvents: { up: boolean; reason?: string }[] = [];
    t.monitorNode('fail-b', (e) => nodeEvents.push(e));

    // On the victim: a registered actor and a sleeper.
    const victim = await t.spawn(b.id, 'named', { name: 'fail-victim' });
    const sleeper = await t.spawn(b.id, 'sleeper');
    const aInspector = await t.spawn(a.id, 'inspector');
    await eventually(
      async () => (await aInspector.call({ op: 'whereis', name: 'fail-victim' })) !== null,
      'fail-a to see fail-victim',
    );

    // Watchers in the test process: a monitor, a linked actor, a linked actor trapping exits.
    const monitored = t.waitDown(victim);
    const linked = t.spawn(async (self) => {
      self.link(victim);
      await self.receive(() => false);
    });
    const linkedDown = t.waitDown(linked);
    const trapper = t.spawn(
      async (self) => {
        self.link(victim);
        const e = await self.receive(isExit);
        return { reason: e.reason, from: e.from?.key };
      },
      { trapExit: true },
    );
    const trapperDown = t.waitDown(trapper);

    // Watchers on another process (fail-a): a monitor, a linked actor, a trapping linked actor.
    const fromAMonitor = inbox(t, (m) => typeof m === 'object' && m !== null && 'down' in m);
    await t.spawn(a.id, 'watcher', { target: victim, report: fromAMonitor.ref });
    const aLinker = await t.spawn(a.id, 'linker', { to: victim });
    const aLinkerDown = t.waitDown(aLinker);
    const fromATrapper = inbox(t, (m) => typeof m === 'object' && m !== null && 'trapped' in m);
    const aTrapper = await t.spawn(a.id, 'linker', {
      to: victim,
      trap: true,
      report: fromATrapper.ref,
    });
    const aTrapperDown = t.waitDown(aTrapper);

    // A call that is still pending when the node dies (it would answer after a minute).
    const pending = sleeper.call({ ms: 60_000 }, { timeout: 30_000 }).then(
      (v) => ({ ok: true as const, v }),
      (e: TroupeError) => ({ ok: false as const, code: e.code, message: e.message }),
    );
    // Everything above was sent to fail-b before this round trip on the same link came back.
    expect(await victim.call('sync')).toBe('sync');

    const aMark = a.mark();
    let killedAt = 0;
    const settled = settleAll(
      {
        mon: monitored,
        lnk: linkedDown,
        trp: trapperDown,
        aMon: fromAMonitor.got,
        aLnk: aLinkerDown,
        aTrp: fromATrapper.got,
        call: pending,
        goneHere: eventually(
          () => t.whereis('fail-victim') === undefined,
          'fail-victim to vanish on the test node',
          10_000,
          10,
        ),
        goneOnA: eventually(
          async () => (await aInspector.call({ op: 'whereis', name: 'fail-victim' })) === null,
          'fail-victim to vanish on fail-a',
          10_000,
          10,
        ),
      },
      () => killedAt,
      'every watcher to hear of the loss',
      15_000,
    );
    killedAt = Date.now();
    expect((await b.kill('SIGKILL')).signal).toBe('SIGKILL');
    const r = await settled;
    const { mon, lnk, trp, aMon, aLnk, aTrp, call } = r;

    expect(mon.value.reason).toBe('noconnection');
    expect(lnk.value.reason).toBe('noconnection');
    // Trapping: the exit arrives as a message; the actor itself lives on (it ended normally).
    expect(trp.value.reason).toBe('normal');
    expect(trp.value.result).toEqual({ reason: 'noconnection', from: victim.key });
    expect(aMon.value).toEqual({ down: 'noconnection' });
    expect(aLnk.value.reason).toBe('noconnection');
    expect(aTrp.value).toEqual({ trapped: 'noconnection' });
    expect(call.value).toMatchObject({ ok: false, code: 'NODE_DOWN' });
    expect(nodeEvents).toEqual([{ node: 'fail-b', up: false, reason: 'noconnection' }]);
    await a.waitForLine(/node down: fail-b/, 'that fail-b is down', 5000, aMark);

    const slowest = Math.max(...Object.values(r).map((x) => x.after));
    expect(
      slowest,
      `detection took ${slowest} ms; bound ${DETECTION_BOUND} ms`,
    ).toBeLessThanOrEqual(DETECTION_BOUND);

    // The trapping linker on fail-a survived the exit signal: killing it now is what ends it
    // (had it died of the signal, its DOWN would say `noconnection`).
    aTrapper.exit('kill');
    expect((await within(aTrapperDown, 'the trapping linker to end', 5000)).reason).toBe('killed');

    // Restart under the same name and port; it joins through fail-a again.
    const b2 = await cluster.start({
      name: 'fail-b',
      listen: b.hostPort,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
      seeds: [a.hostPort],
    });
    expect(b2.address).toBe(b.address);
    await eventually(
      () => t.peers().includes('fail-b'),
      'the test node to link to the restarted fail-b',
    );
    expect(nodeEvents.at(-1)).toEqual({ node: 'fail-b', up: true });
    // The name is free again and can be taken by an actor of the new life; every node sees it.
    const victim2 = await t.spawn(b2.id, 'named', { name: 'fail-victim' });
    await eventually(
      () => t.whereis('fail-victim')?.equals(victim2),
      'the test node to see the new fail-victim',
    );
    await eventually(async () => {
      const seen = (await aInspector.call({
        op: 'whereis',
        name: 'fail-victim',
      })) as ActorRef | null;
      return seen?.equals(victim2);
    }, 'fail-a to see the new fail-victim');
    expect(await t.call('fail-victim', 'again')).toBe('again');
    const sleeper2 = await t.spawn(b2.id, 'sleeper');
    expect(await sleeper2.call({ ms: 1 })).toBe('slept 1 ms');
  }, 60_000);

  test('SIGSTOP: a silent peer (sockets open, no heartbeats) is declared down by the heartbeat timeout', async () => {
    const { a, b, t } = await startPair();
    const victim = await t.spawn(b.id, 'named', { name: 'stop-victim' });
    const sleeper = await t.spawn(b.id, 'sleeper');
    const aInspector = await t.spawn(a.id, 'inspector');
    await eventually(
      async () => (await aInspector.call({ op: 'whereis', name: 'stop-victim' })) !== null,
      'fail-a to see stop-victim',
    );
    const fromAMonitor = inbox(t, (m) => typeof m === 'object' && m !== null && 'down' in m);
    await t.spawn(a.id, 'watcher', { target: victim, report: fromAMonitor.ref });
    const monitored = t.waitDown(victim);
    const pending = sleeper.call({ ms: 60_000 }, { timeout: 30_000 }).then(
      () => 'answered',
      (e: TroupeError) => e.code,
    );
    const linkDown = t.events.next('linkDown', (e) => e.node === 'fail-b');
    expect(await victim.call('sync')).toBe('sync');

    const aMark = a.mark();
    let frozenAt = 0;
    const settled = settleAll(
      {
        mon: monitored,
        aMon: fromAMonitor.got,
        call: pending,
        down: linkDown,
        goneOnA: eventually(
          async () => (await aInspector.call({ op: 'whereis', name: 'stop-victim' })) === null,
          'stop-victim to vanish on fail-a',
          10_000,
          10,
        ),
      },
      () => frozenAt,
      'every watcher to hear of the silent node',
      15_000,
    );
    frozenAt = Date.now();
    b.freeze();
    const r = await settled;
    const { mon, aMon, call, down } = r;

    // Only the heartbeat timeout can have noticed: the socket never closed.
    expect(down.value.reason).toBe('heartbeat timeout');
    await a.waitForLine(
      /link down: fail-b \(heartbeat timeout\)/,
      'its heartbeat timeout on fail-b',
      5000,
      aMark,
    );
    expect(mon.value.reason).toBe('noconnection');
    expect(aMon.value).toEqual({ down: 'noconnection' });
    expect(call.value).toBe('NODE_DOWN');
    expect(t.whereis('stop-victim')).toBeUndefined();
    const slowest = Math.max(...Object.values(r).map((x) => x.after));
    expect(
      slowest,
      `detection took ${slowest} ms; bound ${DETECTION_BOUND} ms`,
    ).toBeLessThanOrEqual(DETECTION_BOUND);
    expect(b.exit).toBeUndefined(); // frozen, not dead: cleanup kills it
  }, 60_000);
});

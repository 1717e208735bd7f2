// Issue 3 — remote spawn across processes: success, an unknown behaviour, invalid arguments,
// and the spawned actor's exit reaching a remote monitor or link (a parallel map's result in its
// DOWN — Erlangen's pattern — and a crash as an error reason).
import { describe, expect, test } from 'vitest';
import {
  downOf,
  isErrorReason,
  isExit,
  TroupeError,
  type ActorContext,
  type Node,
} from '../core/index.ts';
import { defineStandardBehaviours } from '../server/behaviours.ts';
import { useCluster, eventually, within, type ChildNode } from './helpers/cluster.ts';

const cluster = useCluster();

async function twoNodes(): Promise<{ a: ChildNode; b: ChildNode; t: Node }> {
  const a = await cluster.start({ name: 'spawn-a' });
  const b = await cluster.start({ name: 'spawn-b', seeds: [a.hostPort] });
  const t = await cluster.node({ name: 'spawn-test' });
  await t.join(a.address);
  await eventually(() => t.peers().includes('spawn-b'), 'the test node to link to spawn-b');
  return { a, b, t };
}

/** Run `fn` as a local actor of `t` and resolve with what it returns (or reject with its crash). */
async function inActor<T>(
  t: Node,
  fn: (self: ActorContext) => Promise<T>,
  options: { trapExit?: boolean } = {},
): Promise<T> {
  const ref = t.spawn(fn, options);
  const down = await within(t.waitDown(ref), 'the test actor to finish', 20_000);
  if (down.reason !== 'normal')
    throw new Error(`test actor ended with ${JSON.stringify(down.reason)}`);
  return down.result as T;
}

describe('remote spawn across processes', () => {
  test('success, unknown behaviour, invalid arguments, unreachable node', async () => {
    const { a, t } = await twoNodes();
    const echo = await t.spawn(a.id, 'echo');
    expect(echo.node).toBe('spawn-a');
    expect(await echo.call({ hello: [1, 2, 3] })).toEqual({ hello: [1, 2, 3] });

    const unknown = await t.spawn(a.id, 'no-such-behaviour').then(
      () => undefined,
      (e: TroupeError) => e,
    );
    expect(unknown).toBeInstanceOf(TroupeError);
    expect(unknown!.code).toBe('UNKNOWN_BEHAVIOUR');
    expect(unknown!.message).toMatch(/no behaviour "no-such-behaviour".*known: .*echo/);

    for (const [behaviour, args] of [
      ['named', { name: 5 }],
      ['named', undefined],
      ['pmap', { fn: 'no-such-fn', items: [1] }],
    ] as const) {
      const bad = await t.spawn(a.id, behaviour, args).then(
        () => undefined,
        (e: TroupeError) => e,
      );
      expect(bad, `${behaviour} ${JSON.stringify(args)}`).toBeInstanceOf(TroupeError);
      expect(bad!.code).toBe('INVALID_MESSAGE');
      expect(bad!.message).toMatch(new RegExp(`invalid arguments for behaviour "${behaviour}"`));
    }

    const nowhere = await t.spawn('no-such-node', 'echo').then(
      () => undefined,
      (e: TroupeError) => e,
    );
    expect(nowhere?.code).toBe('NODE_DOWN');
    // The node that refused those still spawns.
    expect(await (await t.spawn(a.id, 'echo')).call('ok')).toBe('ok');
  });

  test("Erlangen's pattern: a parallel map spawned remotely with a monitor; its DOWN carries the result", async () => {
    const { a, b, t } = await twoNodes();
    const items = Array.from({ length: 40 }, (_, i) => i + 1);
    const got = await inActor(t, async (self) => {
      // The one short call site: spawn there with a monitor, receive the DOWN with the result.
      const ref = await self.spawnOn(
        a.id,
        'pmap',
        { fn: 'square', items, nodes: [a.id, b.id] },
        { monitor: true },
      );
      const { reason, result } = await self.receive(downOf(ref), { timeout: 15_000 });
      return { reason, result, node: ref.node };
    });
    expect(got).toEqual({ reason: 'normal', result: items.map((x) => x * x), node: 'spawn-a' });
  });

  test('a remote crash reaches a remote monitor and a remote link as an error reason', async () => {
    const { a, t } = await twoNodes();
    const crash = { name: 'Error', message: 'crasher was asked to crash' };

    // Monitor: DOWN with the crash as an error reason.
    const down = await inActor(t, async (self) => {
      const ref = await self.spawnOn(a.id, 'crasher', undefined, { monitor: true });
      ref.send('crash now');
      const d = await self.receive(downOf(ref), { timeout: 10_000 });
      return { reason: d.reason, isError: isErrorReason(d.reason) };
    });
    expect(down.isError).toBe(true);
    expect(down.reason).toMatchObject(crash);

    // Link, trapping exits: an EXIT message with the same reason.
    const exit = await inActor(
      t,
      async (self) => {
        const ref = await self.spawnOn(a.id, 'crasher', undefined, { link: true });
        ref.send('crash now');
        const e = await self.receive(isExit, { timeout: 10_000 });
        return { reason: e.reason, from: e.from?.key, ref: ref.key };
      },
      { trapExit: true },
    );
    expect(exit.reason).toMatchObject(crash);
    expect(exit.from).toBe(exit.ref);

    // Link, not trapping: the crash kills the local actor too, with the same reason.
    const victim = t.spawn(async (self) => {
      const ref = await self.spawnOn(a.id, 'crasher', undefined, { link: true });
      ref.send('crash now');
      await self.receive(() => false);
    });
    const victimDown = await within(t.waitDown(victim), 'the linked local actor to die', 10_000);
    expect(victimDown.reason).toMatchObject(crash);
  });

  test('a remote spawn whose init fails reports the failure, not noproc, to its monitor and its link', async () => {
    const { a, t } = await twoNodes();
    await t.spawn(a.id, 'named', { name: 'spawn-taken' });
    await eventually(() => t.whereis('spawn-taken'), 'spawn-taken to be registered');

    const down = await inActor(t, async (self) => {
      const ref = await self.spawnOn(a.id, 'named', { name: 'spawn-taken' }, { monitor: true });
      const d = await self.receive(downOf(ref), { timeout: 10_000 });
      return d.reason;
    });
    expect(down).toMatchObject({ name: 'Error', message: 'name spawn-taken is taken' });

    const exit = await inActor(
      t,
      async (self) => {
        await self.spawnOn(a.id, 'named', { name: 'spawn-taken' }, { link: true });
        return (await self.receive(isExit, { timeout: 10_000 })).reason;
      },
      { trapExit: true },
    );
    expect(exit).toMatchObject({ name: 'Error', message: 'name spawn-taken is taken' });

    // The same through the local path (spawning by behaviour name on the caller's own node).
    defineStandardBehaviours(t);
    const local = await inActor(t, async (self) => {
      const ref = await self.spawnOn(t.id, 'named', { name: 'spawn-taken' }, { monitor: true });
      return (await self.receive(downOf(ref), { timeout: 10_000 })).reason;
    });
    expect(local).toMatchObject({ name: 'Error', message: 'name spawn-taken is taken' });
  });
});

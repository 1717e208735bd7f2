// OTP supervisors on one node: strategies, restart types, shutdown, intensity escalation through
// a three-level tree, backoff (with an injected manual clock), names and the child operations.
import { describe, it, expect } from 'vitest';
import {
  Exit,
  MAX_INTENSITY,
  TroupeError,
  behaviour,
  countChildren,
  createManualClock,
  createNode,
  deleteChild,
  restartChild,
  startChild,
  supervisor,
  terminateChild,
  whichChildren,
  type ActorRef,
  type ChildSpec,
  type ProcessFn,
  type SupervisorRef,
} from '../core/index.ts';
import { useNodes, until, within, settle } from './helpers/nodes.ts';

/**
 * A child that logs `start:id`, and `stop:id` when its supervisor stops it (it traps exits so
 * the order of stops is visible); 'crash' makes it throw, 'normal' return, 'ping' answers.
 */
function worker(
  log: string[],
  id: string,
  opts: { ignoreShutdown?: boolean } = {},
): ProcessFn<unknown> {
  return async (self) => {
    self.trapExit(true);
    log.push(`start:${id}`);
    for (;;) {
      const m = await self.receive();
      if (m instanceof Exit) {
        if (opts.ignoreShutdown) continue;
        log.push(`stop:${id}`);
        self.exit(m.reason);
        return;
      }
      if (m === 'crash') throw new Error(`${id} crashed`);
      if (m === 'normal') return;
      if (m === 'ping') self.reply(`pong:${id}`);
    }
  };
}

const spec = (log: string[], id: string, more: Partial<ChildSpec> = {}): ChildSpec => ({
  id,
  start: worker(log, id),
  ...more,
});

async function refOf(sup: SupervisorRef, id: string): Promise<ActorRef> {
  const c = (await whichChildren(sup)).find((x) => x.id === id);
  if (!c?.ref) throw new Error(`child ${id} not running`);
  return c.ref;
}

/** Wait until `log` has `n` entries, then return the entries after `from`. */
async function logAfter(log: string[], from: number, n: number): Promise<string[]> {
  await until(
    () => log.length >= from + n,
    `${n} log entries after ${from} (have ${JSON.stringify(log.slice(from))})`,
  );
  await settle(3);
  return log.slice(from);
}

describe('supervisor strategies', () => {
  const node = useNodes();

  it('one_for_one restarts only the child that ended', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        strategy: 'one_for_one',
        intensity: 5,
        children: ['a', 'b', 'c'].map((id) => spec(log, id)),
      }),
    );
    await until(() => log.length === 3, 'three starts');
    expect(log).toEqual(['start:a', 'start:b', 'start:c']);
    const [a, b, c] = [await refOf(sup, 'a'), await refOf(sup, 'b'), await refOf(sup, 'c')];
    b.send('crash');
    expect(await logAfter(log, 3, 1)).toEqual(['start:b']);
    expect((await refOf(sup, 'a')).equals(a)).toBe(true);
    expect((await refOf(sup, 'c')).equals(c)).toBe(true);
    expect((await refOf(sup, 'b')).equals(b)).toBe(false);
    const info = (await whichChildren(sup)).find((x) => x.id === 'b')!;
    expect(info.restarts).toBe(1);
    expect(info.lastExit).toMatchObject({ type: 'error', message: 'b crashed' });
  });

  it('one_for_all stops the others in reverse start order, then starts all in order', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        strategy: 'one_for_all',
        intensity: 5,
        children: ['a', 'b', 'c', 'd'].map((id) => spec(log, id)),
      }),
    );
    await until(() => log.length === 4, 'four starts');
    (await refOf(sup, 'b')).send('crash');
    expect(await logAfter(log, 4, 7)).toEqual([
      'stop:d',
      'stop:c',
      'stop:a',
      'start:a',
      'start:b',
      'start:c',
      'start:d',
    ]);
  });

  it('rest_for_one restarts the child and those started after it', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        strategy: 'rest_for_one',
        intensity: 5,
        children: ['a', 'b', 'c', 'd'].map((id) => spec(log, id)),
      }),
    );
    await until(() => log.length === 4, 'four starts');
    const a = await refOf(sup, 'a');
    (await refOf(sup, 'b')).send('crash');
    expect(await logAfter(log, 4, 5)).toEqual([
      'stop:d',
      'stop:c',
      'start:b',
      'start:c',
      'start:d',
    ]);
    expect((await refOf(sup, 'a')).equals(a)).toBe(true);
  });

  it('one_for_all does not restart a temporary sibling it stopped', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        strategy: 'one_for_all',
        intensity: 5,
        children: [spec(log, 'a'), spec(log, 't', { restart: 'temporary' }), spec(log, 'b')],
      }),
    );
    await until(() => log.length === 3, 'three starts');
    (await refOf(sup, 'a')).send('crash');
    expect(await logAfter(log, 3, 4)).toEqual(['stop:b', 'stop:t', 'start:a', 'start:b']);
    expect((await whichChildren(sup)).map((c) => c.id)).toEqual(['a', 'b']);
  });
});

describe('restart types', () => {
  const node = useNodes();
  const cases: [ChildSpec['restart'], 'normal' | 'crash', boolean][] = [
    ['permanent', 'normal', true],
    ['permanent', 'crash', true],
    ['transient', 'normal', false],
    ['transient', 'crash', true],
    ['temporary', 'normal', false],
    ['temporary', 'crash', false],
  ];
  for (const [restart, how, restarted] of cases) {
    it(`${restart} child after a ${how} exit: ${restarted ? 'restarted' : 'not restarted'}`, async () => {
      const n = node();
      const log: string[] = [];
      const sup = n.spawn(supervisor({ intensity: 5, children: [spec(log, 'x', { restart })] }));
      await until(() => log.length === 1, 'start');
      const before = await refOf(sup, 'x');
      const down = n.waitDown(before);
      before.send(how);
      await within(down, 'child ends');
      await settle(5);
      const infos = await whichChildren(sup);
      if (restarted) {
        expect(log).toEqual(['start:x', 'start:x']);
        expect(infos[0].status).toBe('running');
      } else {
        expect(log).toEqual(['start:x']);
        if (restart === 'temporary') expect(infos).toEqual([]);
        else
          expect(infos[0]).toMatchObject({ status: 'stopped', ref: undefined, lastExit: 'normal' });
      }
    });
  }
});

describe('shutdown', () => {
  const node = useNodes();

  it('a child that ignores the shutdown signal is killed after its timeout (manual clock)', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        children: [
          {
            id: 'stubborn',
            start: worker(log, 'stubborn', { ignoreShutdown: true }),
            shutdown: 1000,
          },
        ],
      }),
    );
    await until(() => log.length === 1, 'start');
    let done = false;
    const t = terminateChild(sup, 'stubborn').then(() => (done = true));
    await settle(5);
    clock.advance(999);
    await settle(5);
    expect(done).toBe(false);
    clock.advance(1);
    await within(t, 'terminate after the timeout');
    expect((await whichChildren(sup))[0]).toMatchObject({ status: 'stopped', lastExit: 'killed' });
  });

  it('a child that honours shutdown ends with reason shutdown before its timeout', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(supervisor({ children: [spec(log, 'polite', { shutdown: 1000 })] }));
    await until(() => log.length === 1, 'start');
    await within(terminateChild(sup, 'polite'), 'terminate without the clock moving');
    expect(log).toEqual(['start:polite', 'stop:polite']);
    expect((await whichChildren(sup))[0].lastExit).toBe('shutdown');
  });

  it('brutal_kill kills at once, even a child that traps exits', async () => {
    const n = node({ clock: createManualClock() });
    const log: string[] = [];
    const sup = n.spawn(supervisor({ children: [spec(log, 'k', { shutdown: 'brutal_kill' })] }));
    await until(() => log.length === 1, 'start');
    await within(terminateChild(sup, 'k'), 'brutal kill');
    expect(log).toEqual(['start:k']);
    expect((await whichChildren(sup))[0].lastExit).toBe('killed');
  });

  it('an exit signal to the supervisor stops its children in reverse start order, then it', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(supervisor({ children: ['a', 'b', 'c'].map((id) => spec(log, id)) }));
    await until(() => log.length === 3, 'starts');
    const down = n.waitDown(sup);
    n.exit(sup, 'shutdown');
    expect((await within(down, 'supervisor ends')).reason).toBe('shutdown');
    expect(log.slice(3)).toEqual(['stop:c', 'stop:b', 'stop:a']);
    expect(n.actorCount).toBe(0);
  });
});

describe('restart intensity', () => {
  const node = useNodes();

  it('more than intensity restarts within period: children stopped in reverse order, exit reached_max_restart_intensity', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({ intensity: 2, period: 1000, children: [spec(log, 'a'), spec(log, 'b')] }),
    );
    const down = n.waitDown(sup);
    await until(() => log.length === 2, 'starts');
    for (let i = 0; i < 2; i++) {
      (await refOf(sup, 'b')).send('crash');
      await until(() => log.filter((l) => l === 'start:b').length === i + 2, 'restart');
      clock.advance(400);
    }
    // Two restarts at t=0 and t=400; now t=800: a third within 1000 ms is one too many.
    (await refOf(sup, 'b')).send('crash');
    expect((await within(down, 'supervisor gives up')).reason).toBe(MAX_INTENSITY);
    expect(log.at(-1)).toBe('stop:a');
    expect(n.actorCount).toBe(0);
  });

  it('restarts spread wider than period are fine', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(supervisor({ intensity: 1, period: 1000, children: [spec(log, 'a')] }));
    await until(() => log.length === 1, 'start');
    for (let i = 0; i < 4; i++) {
      (await refOf(sup, 'a')).send('crash');
      await until(() => log.length === i + 2, 'restart');
      clock.advance(1001);
    }
    expect((await whichChildren(sup))[0].restarts).toBe(4);
  });

  it('three levels: intensity exceeded at the bottom escalates to the top', async () => {
    const n = node({ clock: createManualClock() });
    const log: string[] = [];
    const bottom = supervisor({ intensity: 1, children: [spec(log, 'w1'), spec(log, 'w2')] });
    const middle = supervisor({
      intensity: 0,
      children: [spec(log, 'm'), { id: 'bottom', start: bottom, type: 'supervisor' }],
    });
    const top = n.spawn(
      supervisor({
        intensity: 0,
        children: [spec(log, 't'), { id: 'middle', start: middle, type: 'supervisor' }],
      }),
      { name: 'top' },
    );
    const down = n.waitDown(top);
    await until(() => log.length === 4, 'four workers started');
    expect(log).toEqual(['start:t', 'start:m', 'start:w1', 'start:w2']);
    const mid = (await refOf(top, 'middle')) as SupervisorRef;
    const bot = (await refOf(mid, 'bottom')) as SupervisorRef;
    const midDown = n.waitDown(mid);
    const botDown = n.waitDown(bot);
    (await refOf(bot, 'w2')).send('crash');
    await until(() => log.length === 5, 'w2 restarted once');
    (await refOf(bot, 'w2')).send('crash');
    expect((await within(botDown, 'bottom gives up')).reason).toBe(MAX_INTENSITY);
    expect((await within(midDown, 'middle gives up')).reason).toBe(MAX_INTENSITY);
    expect((await within(down, 'top gives up')).reason).toBe(MAX_INTENSITY);
    expect(log.slice(5)).toEqual(['stop:w1', 'stop:m', 'stop:t']);
    expect(n.actorCount).toBe(0);
    expect(n.whereis('top')).toBeUndefined();
  });
});

describe('backoff', () => {
  const node = useNodes();

  it('delays restarts exponentially up to the cap (manual clock, no jitter)', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        intensity: 100,
        period: 1,
        backoff: { initial: 100, factor: 2, max: 300, jitter: 0, reset: 10_000 },
        children: [spec(log, 'a')],
      }),
    );
    await until(() => log.length === 1, 'start');
    await whichChildren(sup);
    // Let the call table close its call window, so what stays pending is not a call's timer.
    clock.advance(0);
    await settle(5);
    const base = clock.pending();
    for (const delay of [100, 200, 300, 300]) {
      const starts = log.length;
      (await refOf(sup, 'a')).send('crash');
      await settle(5);
      expect((await whichChildren(sup))[0].status).toBe('restarting');
      clock.advance(delay - 1);
      await settle(5);
      expect(log.length).toBe(starts);
      clock.advance(1);
      await until(() => log.length === starts + 1, `restart after ${delay} ms`);
    }
    clock.advance(0);
    await settle(5);
    expect(clock.pending()).toBe(base); // no backoff timer left behind
  });

  it('jitter spreads the delay; a child that ran `reset` ms starts again from `initial`', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        intensity: 100,
        period: 1,
        backoff: {
          initial: 100,
          factor: 2,
          max: 1000,
          jitter: 0.2,
          reset: 5000,
          random: () => 0.999999,
        },
        children: [spec(log, 'a')],
      }),
    );
    await until(() => log.length === 1, 'start');
    await whichChildren(sup);
    const base = clock.pending(); // the call table's timeout timer
    const restartAfter = async (ms: number): Promise<void> => {
      const starts = log.length;
      (await refOf(sup, 'a')).send('crash');
      await settle(5);
      clock.advance(ms - 1);
      await settle(5);
      expect(log.length).toBe(starts);
      clock.advance(1);
      await until(() => log.length === starts + 1, `restart after ${ms} ms`);
    };
    clock.advance(6000); // ran longer than reset before its first crash
    await restartAfter(120); // 100 + 20 %
    await restartAfter(240); // 200 + 20 %
    clock.advance(5000);
    await restartAfter(120);
    await terminateChild(sup, 'a');
    expect(clock.pending()).toBe(base);
  });

  it('a terminated child cancels its pending restart timer', async () => {
    const clock = createManualClock();
    const n = node({ clock });
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({
        intensity: 10,
        backoff: { initial: 500, jitter: 0 },
        children: [spec(log, 'a')],
      }),
    );
    await until(() => log.length === 1, 'start');
    await whichChildren(sup);
    const base = clock.pending(); // the call table's timeout timer
    (await refOf(sup, 'a')).send('crash');
    await settle(5);
    expect(clock.pending()).toBe(base + 1);
    await terminateChild(sup, 'a');
    expect(clock.pending()).toBe(base);
    clock.advance(1000);
    await settle(5);
    expect(log).toEqual(['start:a']);
  });
});

describe('names and operations', () => {
  const node = useNodes();

  it('a named child is registered again after a restart and reachable by name', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(
      supervisor({ intensity: 5, children: [spec(log, 'svc', { name: 'svc' })] }),
    );
    await until(() => log.length === 1, 'start');
    const first = n.whereis('svc')!;
    expect(first.equals(await refOf(sup, 'svc'))).toBe(true);
    first.send('crash');
    await until(() => log.length === 2, 'restart');
    const second = n.whereis('svc')!;
    expect(second.equals(first)).toBe(false);
    const caller = n.spawn(async (self) => self.call(self.node.whereis('svc')!, 'ping'));
    expect((await n.waitDown(caller)).result).toBe('pong:svc');
    expect(await n.call('svc', 'ping')).toBe('pong:svc');
  });

  it('start, terminate, restart, delete and count children; typed errors', async () => {
    const n = node();
    const log: string[] = [];
    const sup = n.spawn(supervisor({ children: [spec(log, 'a')] }));
    const b = await startChild(sup, spec(log, 'b', { name: 'bee' }));
    expect(n.whereis('bee')!.equals(b)).toBe(true);
    expect(await countChildren(sup)).toEqual({ specs: 2, active: 2, supervisors: 0, workers: 2 });
    await expect(startChild(sup, spec(log, 'b'))).rejects.toMatchObject({ code: 'NAME_TAKEN' });
    await expect(startChild(sup, spec(log, 'c', { name: 'bee' }))).rejects.toMatchObject({
      code: 'NAME_TAKEN',
    });
    await expect(deleteChild(sup, 'b')).rejects.toMatchObject({
      code: 'INVALID_MESSAGE',
      details: { reason: 'running' },
    });
    await terminateChild(sup, 'b');
    expect(n.whereis('bee')).toBeUndefined();
    expect(await countChildren(sup)).toEqual({ specs: 2, active: 1, supervisors: 0, workers: 2 });
    const b2 = await restartChild(sup, 'b');
    expect(n.whereis('bee')!.equals(b2)).toBe(true);
    await terminateChild(sup, 'b');
    await deleteChild(sup, 'b');
    const err = await terminateChild(sup, 'b').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroupeError);
    expect(err).toMatchObject({ code: 'NO_ACTOR', details: { reason: 'not_found' } });
    expect((await whichChildren(sup)).map((c) => c.id)).toEqual(['a']);
  });

  it('simple_one_for_one: children of one template, started with their own args', async () => {
    const n = node();
    const counter = behaviour({
      init: (start: number) => start,
      handle: (msg: unknown, s: number, ctx) => {
        if (msg === 'crash') throw new Error('boom');
        ctx.reply(s);
        return s + 1;
      },
    });
    const sup = n.spawn(
      supervisor({
        strategy: 'simple_one_for_one',
        intensity: 5,
        children: [{ id: 'counter', start: counter, args: 0, restart: 'transient' }],
      }),
    );
    const c1 = await startChild(sup, { args: 10 });
    const c2 = await startChild(sup, { args: 20, name: 'c2' });
    expect(await c1.call('get')).toBe(10);
    expect(await n.call('c2', 'get')).toBe(20);
    c2.send('crash');
    await until(
      () => n.whereis('c2') !== undefined && !n.whereis('c2')!.equals(c2),
      'c2 restarted',
    );
    expect(await n.call('c2', 'get')).toBe(20);
    expect((await whichChildren(sup)).map((c) => [c.id, c.restarts])).toEqual([
      ['counter-1', 0],
      ['counter-2', 1],
    ]);
    await terminateChild(sup, 'counter-1');
    expect((await countChildren(sup)).specs).toBe(1);
  });

  it('bad options fail at once with INVALID_MESSAGE', () => {
    expect(() => supervisor({ strategy: 'nope' as 'one_for_one' })).toThrow(TroupeError);
    expect(() => supervisor({ children: [{ id: 'a', start: 42 as never }] })).toThrow(
      /start must be/,
    );
    expect(() => supervisor({ strategy: 'simple_one_for_one', children: [] })).toThrow(
      /exactly one/,
    );
  });

  it('a child that cannot start ends the supervisor with failed_to_start_child; the started ones are stopped', async () => {
    const n = node();
    const log: string[] = [];
    n.spawn(async () => {}, { name: 'taken' });
    n.spawn(
      async (self) => {
        await self.receive(() => false);
      },
      { name: 'held' },
    );
    const sup = n.spawn(
      supervisor({ children: [spec(log, 'a'), spec(log, 'b', { name: 'held' })] }),
    );
    const down = await within(n.waitDown(sup), 'supervisor ends');
    expect(down.reason).toMatchObject({
      shutdown: { failed_to_start_child: 'b', reason: { code: 'NAME_TAKEN' } },
    });
    expect(log).toEqual(['start:a', 'stop:a']);
  });
});

describe('types', () => {
  it('operations are typed on the supervisor ref', async () => {
    const { expectTypeOf } = await import('vitest');
    const n = createNode();
    const sup = n.spawn(supervisor({ children: [] }));
    expectTypeOf(sup).toEqualTypeOf<ActorRef<import('../core/index.ts').SupervisorRequest>>();
    expectTypeOf(whichChildren).returns.resolves.toEqualTypeOf<
      import('../core/index.ts').ChildInfo[]
    >();
    expectTypeOf(countChildren).returns.resolves.toEqualTypeOf<
      import('../core/index.ts').ChildCounts
    >();
    // @ts-expect-error: not a supervisor request
    sup.send({ op: 'bogus' });
    await n.shutdown();
  });
});

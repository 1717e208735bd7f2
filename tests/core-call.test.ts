import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { behaviour, createManualClock, reply, TroupeError, type ActorRef } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, rejects, settle, isPending, within } from './helpers/nodes.ts';

const Add = z.object({ add: z.number() });

/** A process that answers every call with its message. */
const echoFn = async (self: { receive(): Promise<unknown>; reply(v: unknown): boolean }) => {
  for (;;) self.reply(await self.receive());
};

/** A process that takes calls and never answers them. */
const silentFn = async (self: { receive(): Promise<unknown> }) => {
  for (;;) await self.receive();
};

describe('call: replies', () => {
  const node = useNodes();

  it('a process answers with self.reply', async () => {
    const a = node({ name: 'a' });
    const echo = a.spawn(echoFn);
    expect(await echo.call({ hello: 'world' })).toEqual({ hello: 'world' });
  });

  it('a behaviour answers with ctx.reply and with return reply(v, s)', async () => {
    const a = node({ name: 'a' });
    const counter = a.spawn(
      behaviour({
        schema: z.union([Add, z.literal('get'), z.literal('peek')]),
        init: () => 10,
        handle(m, total, ctx) {
          if (m === 'get') return reply(total, total);
          if (m === 'peek') {
            ctx.reply(`total is ${total}`);
            return total;
          }
          return reply(total + m.add, total + m.add);
        },
      }),
    );
    expect(await counter.call({ add: 5 })).toBe(15);
    expect(await counter.call({ add: 2 })).toBe(17);
    expect(await counter.call('peek')).toBe('total is 17');
    expect(await counter.call('get')).toBe(17);
  });

  it('a behaviour handler that answers nothing resolves the call with undefined', async () => {
    const a = node({ name: 'a' });
    const b = a.spawn(behaviour<string, number>({ init: () => 0, handle: (_m, s) => s + 1 }));
    expect(await b.call('x')).toBeUndefined();
  });

  it('a deferred reply answers later, from another message', async () => {
    const a = node({ name: 'a' });
    type M = { wait: true } | { release: string };
    const b = a.spawn(
      behaviour<M, ((v: unknown) => boolean) | undefined>({
        init: () => undefined,
        handle(m, pending, ctx) {
          if ('wait' in m) return ctx.deferReply();
          pending?.(m.release);
          return undefined;
        },
      }),
    );
    const p = b.call({ wait: true });
    expect(await isPending(p)).toBe(true);
    b.send({ release: 'now' });
    expect(await within(p, 'deferred reply')).toBe('now');
  });

  it('a call to an actor on another node gets its reply across the link', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const echo = b.spawn(echoFn);
    expect(await a.ref(echo.node, echo.id).call([1, 'two', { three: 3 }])).toEqual([
      1,
      'two',
      { three: 3 },
    ]);
  });
});

describe('call: failures', () => {
  const node = useNodes();

  it('rejects with TIMEOUT after the given timeout, and not before', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const silent = a.spawn(silentFn);
    const p = silent.call('hello?', { timeout: 300 });
    clock.advance(299);
    expect(await isPending(p)).toBe(true);
    clock.advance(1);
    await rejects(p, 'TIMEOUT', 'call to a silent actor');
  });

  it('times out after the default 5000 ms', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const silent = a.spawn(silentFn);
    const p = silent.call('hello?');
    clock.advance(4999);
    expect(await isPending(p)).toBe(true);
    clock.advance(1);
    await rejects(p, 'TIMEOUT', 'call with the default timeout');
  });

  it('a call to a dead local actor rejects with NO_ACTOR without waiting for its timeout', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const gone = a.spawn(async () => 'done');
    await a.waitDown(gone);
    // The manual clock never moves: settling at all proves the timeout played no part.
    await rejects(gone.call('anyone?'), 'NO_ACTOR', 'call to a dead actor');
  });

  it('a call to a dead local actor rejects well before a 5 s timeout on real timers', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => 'done');
    await a.waitDown(gone);
    const t0 = performance.now();
    await rejects(gone.call('anyone?', { timeout: 5000 }), 'NO_ACTOR');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a call to a dead actor on another node rejects with NO_ACTOR promptly', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    await connectMemory(a, b);
    const gone = b.spawn(async () => 'done');
    await b.waitDown(gone);
    await rejects(
      a.ref(gone.node, gone.id).call('anyone?'),
      'NO_ACTOR',
      'remote call to a dead actor',
    );
    // An id that never existed too.
    await rejects(
      a.ref('b', 999_999).call('anyone?'),
      'NO_ACTOR',
      'remote call to an unknown actor',
    );
  });

  it('a message the target schema rejects fails with INVALID_MESSAGE carrying the zod issues', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const counter = behaviour({
      schema: Add,
      init: () => 0,
      handle: (m, s) => reply(s + m.add, s + m.add),
    });
    const local = a.spawn(counter);
    const remote = b.spawn(counter);
    const invalid: unknown[] = [];
    a.events.on('invalidMessage', (e) => invalid.push(e.to));
    b.events.on('invalidMessage', (e) => invalid.push(e.to));
    for (const [ref, where] of [
      [local, 'local'],
      [a.ref<z.infer<typeof Add>>(remote.node, remote.id), 'remote'],
    ] as const) {
      const err = await rejects(
        ref.call({ add: 'one' } as never),
        'INVALID_MESSAGE',
        `${where} invalid call`,
      );
      expect(Array.isArray(err.details)).toBe(true);
      const [issue] = err.details as z.core.$ZodIssue[];
      expect(issue.path).toEqual(['add']);
      expect(issue.code).toBe('invalid_type');
      // The actor survived and still answers valid calls.
      expect(await ref.call({ add: 2 })).toBe(2);
    }
    expect(invalid).toEqual([local.key, remote.key]);
  });

  it('a behaviour calling itself through ref.call gets CALLING_SELF', async () => {
    const a = node({ name: 'a' });
    const b = a.spawn(
      behaviour<string, null>({
        init: () => null,
        async handle(m, s, ctx) {
          if (m !== 'self-call') return reply('inner', s);
          try {
            await ctx.ref.call('inner');
            return reply('no error', s);
          } catch (err) {
            return reply((err as TroupeError).code, s);
          }
        },
      }),
    );
    expect(await b.call('self-call')).toBe('CALLING_SELF');
  });

  it('a process calling itself through self.call gets CALLING_SELF', async () => {
    const a = node({ name: 'a' });
    const p = a.spawn(async (self) => {
      try {
        await self.call(self.ref, 'me?');
        return 'no error';
      } catch (err) {
        return (err as TroupeError).code;
      }
    });
    expect((await within(a.waitDown(p), 'actor ends')).result).toBe('CALLING_SELF');
  });

  it('rejects with ACTOR_EXITED when the target takes the call and exits without replying', async () => {
    const a = node({ name: 'a' });
    const quitter = a.spawn(async (self) => {
      await self.receive();
      return 'bye';
    });
    const err = await rejects(quitter.call('please answer'), 'ACTOR_EXITED');
    expect(err.details).toEqual({ reason: 'normal' });
  });

  it('a process that takes calls and answers only the latest: the earlier ones stay open (cancel reaches them, exit rejects them)', async () => {
    // A process holds every call it took and has not answered, also those it took before its
    // current one (actor.ts #take keeps them in openCalls only when still open).
    const a = node({ name: 'a' });
    const seen: string[] = [];
    const holder = a.spawn(async (self) => {
      await self.receive(); // first: taken, never answered
      const firstSignal = self.signal!;
      firstSignal.addEventListener('abort', () => seen.push('first aborted'));
      self.reply(`second: ${String(await self.receive())}`);
      self.reply('no call is current any more: dropped');
      await self.receive((m) => m === 'quit');
      return 'done';
    });
    const ac = new AbortController();
    const first = holder.call('first', { signal: ac.signal });
    expect(await holder.call('second')).toBe('second: second');
    expect(await isPending(first)).toBe(true);
    const third = holder.call('third');
    ac.abort();
    await rejects(first, 'ABORTED');
    await settle();
    expect(seen).toEqual(['first aborted']);
    holder.send('quit');
    await rejects(third, 'ACTOR_EXITED');
  });

  it('a process exits holding two unanswered calls it took: both reject ACTOR_EXITED', async () => {
    const a = node({ name: 'a' });
    const quitter = a.spawn(async (self) => {
      await self.receive();
      await self.receive();
      await self.receive((m) => m === 'quit');
      return 'bye';
    });
    const p1 = quitter.call('one');
    const p2 = quitter.call('two');
    await settle();
    quitter.send('quit');
    for (const p of [p1, p2]) {
      const err = await rejects(p, 'ACTOR_EXITED');
      expect(err.details).toEqual({ reason: 'normal' });
    }
  });

  it('rejects with ACTOR_EXITED when the target crashes with calls still in its mailbox', async () => {
    const a = node({ name: 'a' });
    const victim = a.spawn(async (self) => {
      await self.receive((m) => m === 'crash');
      throw new RangeError('boom');
    });
    const p1 = victim.call('first');
    const p2 = victim.call('second');
    victim.send('crash');
    for (const p of [p1, p2]) {
      const err = await rejects(p, 'ACTOR_EXITED');
      expect(err.details).toMatchObject({
        reason: { type: 'error', name: 'RangeError', message: 'boom' },
      });
    }
  });

  it('rejects with ACTOR_EXITED across a link when the remote target exits before replying', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const quitter = b.spawn(async (self) => {
      await self.receive();
      throw new Error('nope');
    });
    const err = await rejects(
      a.ref(quitter.node, quitter.id).call('please answer'),
      'ACTOR_EXITED',
    );
    expect(err.details).toMatchObject({ reason: { type: 'error', message: 'nope' } });
  });

  it('rejects with NODE_DOWN when the link to the target node closes while the call is pending', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    const [end] = await connectMemory(a, b);
    const silent = b.spawn(silentFn);
    const p = a.ref(silent.node, silent.id).call('hello?');
    expect(await isPending(p)).toBe(true);
    end.close();
    await rejects(p, 'NODE_DOWN', 'call pending when the link closed');
    // A new call to an unreachable node fails at once too.
    await rejects(
      a.ref(silent.node, silent.id).call('hello?'),
      'NODE_DOWN',
      'call to an unreachable node',
    );
  });

  it('rejects with NODE_DOWN when the link closes from the far side', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    const [, far] = await connectMemory(a, b);
    const silent = b.spawn(silentFn);
    const ref: ActorRef = a.ref(silent.node, silent.id);
    const p = ref.call('hello?');
    expect(await isPending(p)).toBe(true);
    far.close();
    await rejects(p, 'NODE_DOWN');
  });

  it('a call from inside an actor to a dead actor rejects with NO_ACTOR', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => undefined);
    await a.waitDown(gone);
    const caller = a.spawn(async (self) => self.call(gone, 'x').catch((e: TroupeError) => e.code));
    expect((await a.waitDown(caller)).result).toBe('NO_ACTOR');
  });

  it('a call by an unknown registered name rejects with NO_ACTOR', async () => {
    const a = node({ name: 'a' });
    await rejects(a.call('nobody-has-this-name', 'x'), 'NO_ACTOR');
  });

  it('a call that cannot be serialized rejects with SERIALIZATION and the link keeps working', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const target = b.spawn(echoFn);
    const echo = a.ref(target.node, target.id);
    await rejects(echo.call({ fn: () => 1 }), 'SERIALIZATION');
    expect(await echo.call('still fine')).toBe('still fine');
  });

  it('results settle promptly after many concurrent calls (no call is lost)', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const echo = a.ref<number>('b', b.spawn(echoFn).id);
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => echo.call(i)));
    expect(results).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    await settle(1);
  });
});

describe('TroupeError', () => {
  it('round-trips as data with its code and details', () => {
    const e = new TroupeError('INVALID_MESSAGE', 'bad', { details: [{ path: ['x'] }] });
    const back = TroupeError.fromData(JSON.parse(JSON.stringify(e.toData())));
    expect(back).toBeInstanceOf(TroupeError);
    expect([back.code, back.message, back.details]).toEqual([
      'INVALID_MESSAGE',
      'bad',
      [{ path: ['x'] }],
    ]);
    expect(TroupeError.fromData({ code: 'NOT_A_CODE', message: 'x' }).code).toBe('PROTOCOL_ERROR');
  });
});

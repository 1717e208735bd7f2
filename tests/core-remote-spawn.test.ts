import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import {
  behaviour,
  reply,
  downOf,
  isDown,
  isExit,
  createManualClock,
  ActorRef,
  type Down,
  type Exit,
  type Node,
} from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, rejects } from './helpers/nodes.ts';

/** b's behaviour table: a gen_server counter, a squaring job, a job that fails, an idler. */
function defineAll(b: Node): void {
  b.define(
    'counter',
    z.object({ start: z.number().int() }),
    behaviour({
      schema: z.union([z.literal('inc'), z.literal('get')]),
      init: (args: { start: number }) => args.start,
      handle: (m, n) => (m === 'inc' ? reply(n + 1, n + 1) : reply(n, n)),
    }),
  );
  b.define('square', z.number(), async (_self, n: number) => ({
    square: n * n,
    on: _self.node.id,
  }));
  b.define('fail', z.string(), async (_self, message: string) => {
    throw new EvalError(message);
  });
  b.define('idle', undefined, async (self) => {
    await self.receive(() => false);
  });
}

describe('remote spawn over a memory link', () => {
  const node = useNodes();

  async function pair(clock = createManualClock()) {
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    defineAll(b);
    await connectMemory(a, b);
    return { a, b };
  }

  it('spawns a named behaviour on another node and returns a working ref', async () => {
    const { a, b } = await pair();
    expect(b.behaviours().sort()).toEqual(['counter', 'fail', 'idle', 'square']);
    const counter = await within(
      a.spawn<'inc' | 'get'>('b', 'counter', { start: 40 }),
      'remote spawn',
    );
    expect(counter).toBeInstanceOf(ActorRef);
    expect(counter.node).toBe('b');
    expect(b.isAlive(counter)).toBe(true);
    expect(await counter.call('inc')).toBe(41);
    expect(await counter.call('inc')).toBe(42);
    expect(await counter.call('get')).toBe(42);
  });

  it('an unknown behaviour name rejects with UNKNOWN_BEHAVIOUR', async () => {
    const { a, b } = await pair();
    const before = b.actorCount;
    const err = await rejects(a.spawn('b', 'no-such-thing', {}), 'UNKNOWN_BEHAVIOUR');
    expect(err.message).toContain('no-such-thing');
    expect(b.actorCount).toBe(before);
  });

  it('bad args reject with INVALID_MESSAGE carrying the zod issues', async () => {
    const { a, b } = await pair();
    const before = b.actorCount;
    const err = await rejects(a.spawn('b', 'counter', { start: 'zero' }), 'INVALID_MESSAGE');
    const issues = err.details as { path: unknown[]; code: string }[];
    expect(issues[0].path).toEqual(['start']);
    expect(issues[0].code).toBe('invalid_type');
    expect(b.actorCount).toBe(before);
  });

  it('a spawn on an unreachable node rejects with NODE_DOWN', async () => {
    const { a } = await pair();
    await rejects(a.spawn('nowhere', 'counter', { start: 0 }), 'NODE_DOWN');
  });

  it("the spawned actor's exit, with its result, reaches a remote monitor as DOWN", async () => {
    const { a } = await pair();
    const watcher = a.spawn(async (self) => self.receive(isDown));
    const watcherDown = a.waitDown(watcher);
    const job = await within(a.spawn('b', 'square', 12, { monitor: watcher }), 'remote spawn');
    const down = (await within(watcherDown, 'the watcher gets the DOWN')).result as Down;
    expect(down.ref.equals(job)).toBe(true);
    expect(down.reason).toBe('normal');
    expect(down.result).toEqual({ square: 144, on: 'b' });
  });

  it('a remote crash reaches the monitor as DOWN with the error', async () => {
    const { a } = await pair();
    const watcher = a.spawn(async (self) => self.receive(isDown));
    const watcherDown = a.waitDown(watcher);
    await a.spawn('b', 'fail', 'remote trouble', { monitor: watcher });
    const down = (await within(watcherDown, 'the watcher gets the DOWN')).result as Down;
    expect(down.reason).toEqual({ type: 'error', name: 'EvalError', message: 'remote trouble' });
  });

  it("Erlangen's pattern from inside an actor: spawnOn with monitor, then receive(downOf(ref))", async () => {
    const { a } = await pair();
    const boss = a.spawn(async (self) => {
      const job = await self.spawnOn('b', 'square', 9, { monitor: true });
      const { reason, result } = await self.receive(downOf(job));
      return { reason, result };
    });
    expect((await within(a.waitDown(boss), 'boss ends')).result).toEqual({
      reason: 'normal',
      result: { square: 81, on: 'b' },
    });
  });

  it('spawnOn with link: a remote crash kills the local actor, or reaches it as Exit when trapping', async () => {
    const { a } = await pair();
    const linked = a.spawn(async (self) => {
      await self.spawnOn('b', 'fail', 'linked trouble', { link: true });
      await self.receive(() => false);
    });
    expect((await within(a.waitDown(linked), 'linked ends')).reason).toEqual({
      type: 'error',
      name: 'EvalError',
      message: 'linked trouble',
    });

    const trapper = a.spawn(async (self) => {
      self.trapExit();
      const job = await self.spawnOn('b', 'fail', 'trapped trouble', { link: true });
      const exit = await self.receive(isExit);
      return { exit, job };
    });
    const { exit, job } = (await within(a.waitDown(trapper), 'trapper ends')).result as {
      exit: Exit;
      job: ActorRef;
    };
    expect(exit.from?.equals(job)).toBe(true);
    expect(exit.reason).toMatchObject({ message: 'trapped trouble' });
  });

  it('spawnOn errors reject inside the actor: UNKNOWN_BEHAVIOUR and INVALID_MESSAGE', async () => {
    const { a } = await pair();
    const p = a.spawn(async (self) => {
      const codes: string[] = [];
      for (const [name, args] of [
        ['missing', 1],
        ['square', 'not a number'],
      ] as const) {
        await self
          .spawnOn('b', name, args, { monitor: true })
          .catch((e: { code: string }) => codes.push(e.code));
      }
      return { codes, mailbox: self.mailboxSize };
    });
    // No DOWN is left behind for spawns that never happened.
    expect((await within(a.waitDown(p), 'actor ends')).result).toEqual({
      codes: ['UNKNOWN_BEHAVIOUR', 'INVALID_MESSAGE'],
      mailbox: 0,
    });
  });

  it('a remotely spawned actor with a monitor gets DOWN noconnection when the link is lost', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    defineAll(b);
    const [end] = await connectMemory(a, b);
    const probe = a.spawn(async (self) => self.receive());
    const boss = a.spawn(async (self) => {
      const job = await self.spawnOn('b', 'idle', undefined, { monitor: true });
      probe.send(job);
      return (await self.receive(downOf(job))).reason;
    });
    const bossDown = a.waitDown(boss);
    const job = (await within(a.waitDown(probe), 'the spawn completed')).result as ActorRef;
    expect(b.isAlive(job)).toBe(true);
    end.close();
    expect((await within(bossDown, 'boss ends')).result).toBe('noconnection');
  });

  it('spawning on this node by name goes through the same table', async () => {
    const clock = createManualClock();
    const b = node({ name: 'b', clock });
    defineAll(b);
    const counter = await b.spawn<'inc'>('b', 'counter', { start: 1 });
    expect(await counter.call('inc')).toBe(2);
    await rejects(b.spawn('b', 'nope'), 'UNKNOWN_BEHAVIOUR');
    await rejects(b.spawn('b', 'counter', { start: 1.5 }), 'INVALID_MESSAGE');
  });
});

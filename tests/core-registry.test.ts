import { describe, it, expect } from 'vitest';
import { NameLost, TroupeError, createManualClock, type ActorRef } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, settle, until, rejects } from './helpers/nodes.ts';

const echo = async (self: { receive(): Promise<unknown>; reply(v: unknown): boolean }) => {
  for (;;) self.reply(await self.receive());
};
const idle = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive(() => false);
};

describe('registry on one node', () => {
  const node = useNodes();

  it('names are unique', async () => {
    const a = node({ name: 'a' });
    const first = a.spawn(idle);
    const second = a.spawn(idle);
    expect(a.register('svc', first)).toBe(true);
    expect(a.register('svc', second)).toBe(false);
    expect(a.whereis('svc')?.equals(first)).toBe(true);
    // Registering the same actor again under its own name is not a conflict.
    expect(a.register('svc', first)).toBe(true);
    // spawn with a taken name throws NAME_TAKEN and starts nothing.
    const before = a.actorCount;
    let err: unknown;
    try {
      a.spawn(idle, { name: 'svc' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('NAME_TAKEN');
    expect(a.actorCount).toBe(before);
  });

  it('a dead actor cannot be registered', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => undefined);
    await a.waitDown(gone);
    expect(a.register('ghost', gone)).toBe(false);
    expect(a.whereis('ghost')).toBeUndefined();
  });

  it('a name vanishes when its actor dies', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle, { name: 'worker' });
    expect(a.whereis('worker')?.equals(worker)).toBe(true);
    const down = a.waitDown(worker);
    worker.kill();
    await within(down, 'worker ends');
    expect(a.whereis('worker')).toBeUndefined();
    // The name is free again.
    const next = a.spawn(idle, { name: 'worker' });
    expect(a.whereis('worker')?.equals(next)).toBe(true);
  });

  it('unregister frees a name, and only its own node can do it', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle);
    expect(a.register('w', worker)).toBe(true);
    expect(a.unregister('w')).toBe(true);
    expect(a.whereis('w')).toBeUndefined();
    expect(a.unregister('w')).toBe(false);
  });

  it('an actor registers itself with self.register', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(async (self) => {
      const ok = self.register('me');
      for (;;) self.reply([ok, await self.receive()]);
    });
    await settle(1);
    expect(await a.call('me', 'hi')).toEqual([true, 'hi']);
    expect(a.whereis('me')?.equals(worker)).toBe(true);
  });

  it('send and call by name; an unknown name is a dead letter or NO_ACTOR', async () => {
    const a = node({ name: 'a' });
    const got: unknown[] = [];
    a.spawn(
      async (self) => {
        for (;;) {
          const m = await self.receive();
          got.push(m);
          self.reply(`got ${String(m)}`);
        }
      },
      { name: 'inbox' },
    );
    const dead: { to: string; reason: string }[] = [];
    a.events.on('deadLetter', (e) => dead.push(e));
    a.send('inbox', 'one');
    expect(await a.call('inbox', 'two')).toBe('got two');
    expect(got).toEqual(['one', 'two']);
    a.send('no-such-name', 'lost');
    expect(dead).toEqual([expect.objectContaining({ to: 'no-such-name', reason: 'no-name' })]);
    await rejects(a.call('no-such-name', 'x'), 'NO_ACTOR');
  });
});

describe('registry across memory links', () => {
  const node = useNodes();

  it('names replicate: whereis on the other node, send and call by name from there', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    // One name registered before the link, one after.
    const early = a.spawn(echo, { name: 'early' });
    await connectMemory(a, b);
    const late = a.spawn(echo, { name: 'late' });
    await until(() => b.whereis('late') !== undefined, 'b learns "late"');
    expect(b.whereis('early')?.equals(early)).toBe(true);
    expect(b.whereis('late')?.equals(late)).toBe(true);
    expect(await b.call('early', 'via name')).toBe('via name');
    // A name b sees taken is refused there too.
    expect(b.register('early', b.spawn(idle))).toBe(false);
  });

  it('send by name reaches an actor on another node', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const sink = a.spawn(async (self) => self.receive(), { name: 'sink' });
    await until(() => b.whereis('sink') !== undefined, 'b learns "sink"');
    const down = a.waitDown(sink);
    b.send('sink', { from: 'b' });
    expect((await within(down, 'sink ends')).result).toEqual({ from: 'b' });
  });

  it('names replicate through a relay (A—B—C)', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    const c = node({ name: 'c' });
    await connectMemory(a, b);
    await connectMemory(b, c);
    const far = c.spawn(echo, { name: 'far' });
    await until(() => a.whereis('far') !== undefined, 'a learns "far"');
    expect(a.whereis('far')?.equals(far)).toBe(true);
    expect(await a.call('far', 'two hops')).toBe('two hops');
  });

  it('a name vanishes on other nodes when its actor dies', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const worker = a.spawn(idle, { name: 'worker' });
    await until(() => b.whereis('worker') !== undefined, 'b learns "worker"');
    worker.kill();
    await until(() => b.whereis('worker') === undefined, 'b forgets "worker"');
    expect(a.whereis('worker')).toBeUndefined();
  });

  it("a name vanishes when its node's link is lost", async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    const [end] = await connectMemory(a, b);
    const worker = a.spawn(idle, { name: 'worker' });
    await until(() => b.whereis('worker') !== undefined, 'b learns "worker"');
    end.close();
    await until(() => b.whereis('worker') === undefined, 'b drops "worker"');
    // Its own node still has it: the actor is alive.
    expect(a.whereis('worker')?.equals(worker)).toBe(true);
  });

  it('a name race between two nodes connected afterwards resolves deterministically; the loser gets NameLost', async () => {
    // Node ids decide (the lower wins), not who registered first: 'z' registers first and loses.
    const z = node({ name: 'z' });
    const y = node({ name: 'y' });
    const loser = z.spawn(async (self) => {
      if (!self.register('leader')) return 'register failed';
      return self.receive((m) => m instanceof NameLost);
    });
    await settle(1);
    const winner = y.spawn(idle, { name: 'leader' });
    const conflicts: { name: string; winner: ActorRef; loser: ActorRef }[] = [];
    z.events.on('nameConflict', (e) => conflicts.push(e));
    y.events.on('nameConflict', (e) => conflicts.push(e));
    const loserDown = z.waitDown(loser);
    await connectMemory(z, y);
    const lost = (await within(loserDown, 'loser gets NameLost')).result as NameLost;
    expect(lost).toBeInstanceOf(NameLost);
    expect(lost.name).toBe('leader');
    expect(lost.winner.equals(winner)).toBe(true);
    await settle(2);
    expect(z.whereis('leader')?.equals(winner)).toBe(true);
    expect(y.whereis('leader')?.equals(winner)).toBe(true);
    // Only the loser's node reports the conflict, once.
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0].loser.equals(loser)).toBe(true);
    expect(conflicts[0].winner.equals(winner)).toBe(true);
  });

  it('the same race resolves the same way when the other side dials', async () => {
    const z = node({ name: 'z' });
    const y = node({ name: 'y' });
    const zActor = z.spawn(idle, { name: 'leader' });
    const yActor = y.spawn(idle, { name: 'leader' });
    await connectMemory(y, z);
    await settle(3);
    expect(z.whereis('leader')?.equals(yActor)).toBe(true);
    expect(y.whereis('leader')?.equals(yActor)).toBe(true);
    // The loser dying later must not take the winner's name with it.
    zActor.kill();
    await settle(3);
    expect(z.whereis('leader')?.equals(yActor)).toBe(true);
    expect(y.whereis('leader')?.equals(yActor)).toBe(true);
  });
});

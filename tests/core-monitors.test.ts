import { describe, it, expect } from 'vitest';
import {
  Down,
  downOf,
  isDown,
  behaviour,
  reply,
  createManualClock,
  type ActorRef,
  type ErrorReason,
  type Node,
} from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, settle, isPending } from './helpers/nodes.ts';

const idle = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive(() => false);
};

/** A watcher process: monitors `target` and ends with the DOWN it gets (as its result). */
const watcherOf =
  (target: ActorRef) =>
  async (self: {
    monitor(r: ActorRef): string;
    receive<T>(p: (m: unknown) => m is T): Promise<T>;
  }) => {
    const mid = self.monitor(target);
    const down = await self.receive(downOf(target));
    return { mid, down };
  };

/** Spawn a {@link watcherOf} on `n` and resolve with what it saw. */
function watchFrom(n: Node, target: ActorRef): Promise<{ mid: string; down: Down }> {
  const w = n.spawn(watcherOf(target));
  return within(n.waitDown(w), `watcher of ${target.key} ends`).then(
    (d) => d.result as { mid: string; down: Down },
  );
}

describe('monitors', () => {
  const node = useNodes();

  it("DOWN normal carries the process function's return value as result", async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      return { answer: 42 };
    });
    const watched = watchFrom(a, worker);
    worker.send('go');
    const { mid, down } = await watched;
    expect(down).toBeInstanceOf(Down);
    expect(down.monitor).toBe(mid);
    expect(down.ref.equals(worker)).toBe(true);
    expect(down.reason).toBe('normal');
    expect(down.result).toEqual({ answer: 42 });
  });

  it("DOWN error carries the error's name and message, and the node reports actorCrashed", async () => {
    const a = node({ name: 'a' });
    const crashed: { ref: ActorRef; reason: ErrorReason }[] = [];
    a.events.on('actorCrashed', (e) => crashed.push(e));
    class QuotaError extends Error {
      override name = 'QuotaError';
    }
    const worker = a.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      throw new QuotaError('over quota');
    });
    const down = a.waitDown(worker);
    worker.send('go');
    const d = await within(down, 'worker ends');
    expect(d.reason).toEqual({ type: 'error', name: 'QuotaError', message: 'over quota' });
    expect(d.result).toBeUndefined();
    expect(crashed).toHaveLength(1);
    expect(crashed[0].ref.equals(worker)).toBe(true);
    expect(crashed[0].reason).toMatchObject({ name: 'QuotaError', message: 'over quota' });
  });

  it('an error reason carries no stack unless the node exposes stacks', async () => {
    const quiet = node({ name: 'quiet' });
    const loud = node({ name: 'loud', exposeStacks: true });
    for (const [n, hasStack] of [
      [quiet, false],
      [loud, true],
    ] as const) {
      const w = n.spawn(async () => {
        throw new Error('x');
      });
      const reason = (await within(n.waitDown(w), 'worker ends')).reason as ErrorReason;
      expect(typeof reason.stack === 'string', n.id).toBe(hasStack);
    }
  });

  it('DOWN killed after kill()', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle);
    const watched = watchFrom(a, worker);
    await settle(1);
    worker.kill();
    const { down } = await watched;
    expect(down.reason).toBe('killed');
  });

  it('monitoring a dead actor yields DOWN noproc at once', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => 'bye');
    await a.waitDown(gone);
    const watcher = a.spawn(async (self) => {
      self.monitor(gone);
      // Already in the mailbox: a zero timeout would fail if it had to wait.
      return self.receive(downOf(gone), { timeout: 0 });
    });
    const down = (await within(a.waitDown(watcher), 'watcher ends')).result as Down;
    expect(down.reason).toBe('noproc');
    expect(down.ref.equals(gone)).toBe(true);
  });

  it('node.waitDown of a dead actor resolves with noproc', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => 'bye');
    await a.waitDown(gone);
    expect((await within(a.waitDown(gone), 'waitDown')).reason).toBe('noproc');
  });

  it('demonitor: no DOWN arrives afterwards', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle);
    const watcher = a.spawn(async (self) => {
      const mid = self.monitor(worker);
      self.demonitor(mid);
      worker.kill();
      const other = self.monitor(worker); // a fresh monitor on the now-dead actor: noproc
      const first = await self.receive(isDown);
      return { first, other };
    });
    const { first, other } = (await within(a.waitDown(watcher), 'watcher ends')).result as {
      first: Down;
      other: string;
    };
    expect(first.monitor).toBe(other);
    expect(first.reason).toBe('noproc');
  });

  it('every monitor fires: two watchers of one actor each get their DOWN', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle);
    const seen = [watchFrom(a, worker), watchFrom(a, worker)];
    await settle(1);
    worker.exit('stop');
    const [s1, s2] = await Promise.all(seen);
    expect([s1.down.reason, s2.down.reason]).toEqual(['stop', 'stop']);
    expect(s1.mid).not.toBe(s2.mid);
  });

  it('a behaviour gets DOWN through its info handler', async () => {
    const a = node({ name: 'a' });
    const worker = a.spawn(idle);
    const watcher = a.spawn(
      behaviour<'watch' | 'seen', unknown[]>({
        init: () => [],
        handle(m, seen, ctx) {
          if (m === 'watch') ctx.monitor(worker);
          return reply(seen, seen);
        },
        info: (msg, seen) => [...seen, msg.type === 'DOWN' ? msg.reason : msg.type],
      }),
    );
    await watcher.call('watch');
    worker.kill();
    await settle(1);
    expect(await watcher.call('seen')).toEqual(['killed']);
  });

  it('remote monitors: DOWN normal with its result crosses a memory link', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const worker = b.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      return { finishedAt: new Date(1_000), tags: new Set(['x']) };
    });
    const remote = a.ref(worker.node, worker.id);
    const watched = watchFrom(a, remote);
    await settle(2); // the monitor envelope reached b
    remote.send('go');
    const { down } = await watched;
    expect(down.reason).toBe('normal');
    expect(down.ref.equals(worker)).toBe(true);
    expect(down.result).toEqual({ finishedAt: new Date(1_000), tags: new Set(['x']) });
  });

  it('remote monitors: DOWN error and killed cross a memory link', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const crasher = b.spawn(async (self) => {
      await self.receive((m) => m === 'go');
      throw new SyntaxError('bad input');
    });
    const victim = b.spawn(idle);
    const w1 = watchFrom(a, a.ref(crasher.node, crasher.id));
    const w2 = watchFrom(a, a.ref(victim.node, victim.id));
    await settle(2);
    crasher.send('go');
    a.ref(victim.node, victim.id).kill();
    const d1 = (await w1).down;
    const d2 = (await w2).down;
    expect(d1.reason).toEqual({ type: 'error', name: 'SyntaxError', message: 'bad input' });
    expect(d2.reason).toBe('killed');
  });

  it('remote monitor of a dead or unknown actor yields DOWN noproc', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const gone = b.spawn(async () => undefined);
    await b.waitDown(gone);
    for (const id of [gone.id, 987_654]) {
      const down = await within(a.waitDown(a.ref('b', id)), `waitDown b/${id}`);
      expect(down.reason).toBe('noproc');
      expect(down.ref.key).toBe(`b/${id}`);
    }
  });

  it('DOWN noconnection when the memory link closes', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    const [end] = await connectMemory(a, b);
    const worker = b.spawn(idle);
    const watched = watchFrom(a, a.ref(worker.node, worker.id));
    await settle(2);
    expect(await isPending(watched)).toBe(true);
    end.close();
    const { down } = await watched;
    expect(down.reason).toBe('noconnection');
    // The actor itself is alive on b: noconnection says nothing about it.
    expect(b.isAlive(worker)).toBe(true);
  });

  it('DOWN noconnection when the peer goes silent (heartbeat timeout on the manual clock)', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock, heartbeatInterval: 100, heartbeatTimeout: 500 });
    const b = node({ name: 'b', clock, heartbeatInterval: 100, heartbeatTimeout: 500 });
    const [aEnd] = await connectMemory(a, b);
    const worker = b.spawn(idle);
    const down = a.waitDown(a.ref(worker.node, worker.id));
    await settle(2);
    // Heartbeats keep the link up while both sides run...
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await settle(1);
    }
    expect(await isPending(down)).toBe(true);
    // ...then b's frames stop arriving at a (a one-way cut: nothing closes the connection).
    aEnd.onframe = () => {};
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await settle(1);
    }
    expect((await within(down, 'DOWN after heartbeat timeout')).reason).toBe('noconnection');
  });

  it('monitoring an actor of an unreachable node yields DOWN noconnection at once', async () => {
    const a = node({ name: 'a' });
    const down = await within(a.waitDown(a.ref('nowhere', 1)), 'waitDown');
    expect(down.reason).toBe('noconnection');
  });
});

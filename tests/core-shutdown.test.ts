import { describe, it, expect } from 'vitest';
import { behaviour, isDown, createManualClock, type Down, type ExitReason } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, settle, rejects, isPending, until } from './helpers/nodes.ts';

const idle = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive(() => false);
};
const silent = async (self: { receive(): Promise<unknown> }) => {
  for (;;) await self.receive();
};

describe('node.shutdown', () => {
  const node = useNodes();

  it('every actor exits with reason shutdown; monitors on another node fire with it', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    await connectMemory(a, b);
    const terminated: ExitReason[] = [];
    const targets = [
      a.spawn(idle),
      a.spawn(idle, { trapExit: true }), // trapping does not save an actor from shutdown
      a.spawn(
        behaviour<string, null>({
          init: () => null,
          handle: () => null,
          terminate: (r) => terminated.push(r),
        }),
      ),
    ];
    // One watcher on b monitors all of a's actors and collects the DOWNs.
    const watcher = b.spawn(async (self) => {
      for (const t of targets) self.monitor(self.node.ref(t.node, t.id));
      const downs: Down[] = [];
      while (downs.length < targets.length) downs.push(await self.receive(isDown));
      return downs;
    });
    await settle(2);
    // Watch before shutting down: the watcher may have collected every DOWN and ended by the
    // time shutdown() resolves (a watch started then would see `noproc`, without the result).
    const watched = b.waitDown(watcher);
    await a.shutdown();
    const downs = (await within(watched, 'watcher collects every DOWN')).result as Down[];
    expect(downs.map((d) => d.reason)).toEqual(['shutdown', 'shutdown', 'shutdown']);
    expect(downs.map((d) => d.ref.key).sort()).toEqual(targets.map((t) => t.key).sort());
    expect(terminated).toEqual(['shutdown']);
    expect(targets.some((t) => a.isAlive(t))).toBe(false);
    expect(a.actorCount).toBe(0);
    expect(a.isShutdown).toBe(true);
  });

  it('a trapping link partner on another node gets an Exit with reason shutdown', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const target = a.spawn(idle);
    const partner = b.spawn(
      async (self) => {
        self.link(self.node.ref(target.node, target.id));
        return self.receive((m) => (m as { type?: string }).type === 'EXIT');
      },
      { trapExit: true },
    );
    const partnerDown = b.waitDown(partner);
    await settle(2);
    await a.shutdown();
    expect(((await within(partnerDown, 'partner ends')).result as { reason: unknown }).reason).toBe(
      'shutdown',
    );
    expect(a.isAlive(target)).toBe(false);
  });

  it('regression: calls pending at shutdown rejected with NODE_DOWN instead of SHUTDOWN; calls to its actors get ACTOR_EXITED', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    await connectMemory(a, b);
    const onB = b.spawn(silent);
    const onA = a.spawn(silent);
    const outgoing = a.ref(onB.node, onB.id).call('never answered'); // a → b, pending
    const incoming = b.ref(onA.node, onA.id).call('never answered'); // b → a, taken by a's actor
    const local = onA.call('never answered'); // a → a
    expect(await isPending(Promise.race([outgoing, incoming, local]))).toBe(true);
    await a.shutdown();
    await rejects(outgoing, 'SHUTDOWN', 'a call from the node that shut down');
    const inErr = await rejects(
      incoming,
      'ACTOR_EXITED',
      'a call to an actor of the node that shut down',
    );
    expect(inErr.details).toEqual({ reason: 'shutdown' });
    const localErr = await rejects(local, 'ACTOR_EXITED', 'a local call');
    expect(localErr.details).toEqual({ reason: 'shutdown' });
  });

  it('after shutdown: spawn throws SHUTDOWN, attach rejects SHUTDOWN, the peer sees the node down', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const downs: string[] = [];
    b.events.on('nodeDown', (e) => downs.push(e.node));
    await a.shutdown();
    await until(() => downs.includes('a'), 'b sees a down');
    expect(b.peers()).toEqual([]);
    expect(() => a.spawn(idle)).toThrow(expect.objectContaining({ code: 'SHUTDOWN' }));
    const c = node({ name: 'c' });
    await rejects(connectMemory(a, c), 'SHUTDOWN', 'attach after shutdown');
    // shutdown is idempotent
    await a.shutdown();
    expect(a.isShutdown).toBe(true);
  });
});

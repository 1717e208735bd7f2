import { describe, it, expect } from 'vitest';
import { Exit, isExit, behaviour, createManualClock, type ActorRef } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, settle } from './helpers/nodes.ts';

/** A process that waits for 'die' and then throws. */
const dieOnCue = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive((m) => m === 'die');
  throw new TypeError('partner failed');
};

/** A process that waits forever (until an exit signal ends it). */
const idle = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive(() => false);
};

const crashReason = { type: 'error', name: 'TypeError', message: 'partner failed' };

describe('links', () => {
  const node = useNodes();

  it('an abnormal exit kills the linked partner, with the same reason', async () => {
    const a = node({ name: 'a' });
    const crasher = a.spawn(dieOnCue);
    const partner = a.spawn(idle, { link: crasher });
    const partnerDown = a.waitDown(partner);
    crasher.send('die');
    const down = await within(partnerDown, 'partner ends');
    expect(down.reason).toEqual(crashReason);
    expect(a.isAlive(partner)).toBe(false);
  });

  it('links are two-way: the partner that linked can kill the other end too', async () => {
    const a = node({ name: 'a' });
    const other = a.spawn(idle);
    const linker = a.spawn(async (self) => {
      self.link(other);
      await self.receive((m) => m === 'die');
      throw new TypeError('partner failed');
    });
    const otherDown = a.waitDown(other);
    linker.send('die');
    expect((await within(otherDown, 'other ends')).reason).toEqual(crashReason);
  });

  it("trapExit turns the partner's exit into an Exit message", async () => {
    const a = node({ name: 'a' });
    const crasher = a.spawn(dieOnCue);
    const trapper = a.spawn(
      async (self) => {
        const exit = await self.receive(isExit);
        return { exit, alive: self.node.isAlive(self.ref) };
      },
      { link: crasher, trapExit: true },
    );
    crasher.send('die');
    const down = await within(a.waitDown(trapper), 'trapper ends');
    expect(down.reason).toBe('normal');
    const { exit, alive } = down.result as { exit: Exit; alive: boolean };
    expect(alive).toBe(true);
    expect(exit).toBeInstanceOf(Exit);
    expect(exit.from?.equals(crasher)).toBe(true);
    expect(exit.reason).toEqual(crashReason);
  });

  it('self.trapExit() switches trapping on from inside the actor', async () => {
    const a = node({ name: 'a' });
    const crasher = a.spawn(dieOnCue);
    const trapper = a.spawn(async (self) => {
      self.trapExit();
      self.link(crasher);
      crasher.send('die');
      return (await self.receive(isExit)).reason;
    });
    expect((await within(a.waitDown(trapper), 'trapper ends')).result).toEqual(crashReason);
  });

  it('a normal exit kills nobody; a trapping partner sees it as an Exit with reason normal', async () => {
    const a = node({ name: 'a' });
    const finisher = a.spawn(async (self) => {
      await self.receive((m) => m === 'finish');
      return 'finished';
    });
    const plain = a.spawn(
      async (self) => {
        for (;;) self.reply(await self.receive());
      },
      { link: finisher },
    );
    const trapper = a.spawn(async (self) => self.receive(isExit), {
      link: finisher,
      trapExit: true,
    });
    const finisherDown = a.waitDown(finisher);
    const trapperDown = a.waitDown(trapper);
    finisher.send('finish');
    await within(finisherDown, 'finisher ends');
    const exit = (await within(trapperDown, 'trapper ends')).result as Exit;
    expect(exit.reason).toBe('normal');
    expect(exit.result).toBe('finished');
    expect(a.isAlive(plain)).toBe(true);
    expect(await plain.call('still here')).toBe('still here');
  });

  it('an unlinked partner survives', async () => {
    const a = node({ name: 'a' });
    const crasher = a.spawn(dieOnCue);
    const survivor = a.spawn(async (self) => {
      self.link(crasher);
      self.unlink(crasher);
      crasher.send('die');
      for (;;) self.reply(await self.receive());
    });
    await within(a.waitDown(crasher), 'crasher ends');
    await settle(1);
    expect(a.isAlive(survivor)).toBe(true);
    expect(await survivor.call('ok?')).toBe('ok?');
  });

  it('linking to a dead actor kills the linker with noproc (or tells a trapping one)', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => undefined);
    await a.waitDown(gone);
    const linker = a.spawn(async (self) => {
      self.link(gone);
      await self.receive(() => false);
    });
    expect((await within(a.waitDown(linker), 'linker ends')).reason).toBe('noproc');
    const trapper = a.spawn(async (self) => {
      self.trapExit();
      self.link(gone);
      return (await self.receive(isExit)).reason;
    });
    expect((await within(a.waitDown(trapper), 'trapper ends')).result).toBe('noproc');
  });

  it('links work across a memory link, both ways', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    // a's actor links to b's; b's actor crashes; a's actor dies with b's reason.
    const remoteCrasher = b.spawn(dieOnCue);
    const local = a.spawn(async (self) => {
      const r = self.node.ref(remoteCrasher.node, remoteCrasher.id);
      self.link(r);
      r.send('die'); // after the link envelope, on the same route: it cannot overtake it
      await self.receive(() => false);
    });
    expect((await within(a.waitDown(local), 'local partner ends')).reason).toEqual(crashReason);

    // The other way: a's actor crashes, b's linked actor traps and gets the Exit across the link.
    const localCrasher = a.spawn(dieOnCue);
    const remoteTrapper = b.spawn(
      async (self) => {
        const r = self.node.ref(localCrasher.node, localCrasher.id);
        self.link(r);
        r.send('die');
        return self.receive(isExit);
      },
      { trapExit: true },
    );
    const exit = (await within(b.waitDown(remoteTrapper), 'remote trapper ends')).result as Exit;
    expect(exit.reason).toEqual(crashReason);
    expect(exit.from?.equals(localCrasher)).toBe(true);
  });

  it('a remote partner dies with noconnection when the link is lost', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const b = node({ name: 'b', clock });
    const [end] = await connectMemory(a, b);
    const remote = b.spawn(idle);
    const local = a.spawn(async (self) => {
      self.link(self.node.ref(remote.node, remote.id));
      await self.receive(() => false);
    });
    const localDown = a.waitDown(local);
    const remoteDown = b.waitDown(remote);
    await settle(1);
    end.close();
    expect((await within(localDown, 'local ends')).reason).toBe('noconnection');
    expect((await within(remoteDown, 'remote ends')).reason).toBe('noconnection');
  });

  it('kill sent directly is untrappable; monitors see killed', async () => {
    const a = node({ name: 'a' });
    const trapper = a.spawn(idle, { trapExit: true });
    const down = a.waitDown(trapper);
    trapper.kill();
    expect((await within(down, 'trapper ends')).reason).toBe('killed');
  });

  it('kill sent across a link is untrappable too', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const trapper = b.spawn(idle, { trapExit: true });
    const down = b.waitDown(trapper);
    a.ref(trapper.node, trapper.id).kill();
    expect((await within(down, 'trapper ends')).reason).toBe('killed');
  });

  it('a partner of a killed actor gets reason killed, which it can trap', async () => {
    const a = node({ name: 'a' });
    const victim = a.spawn(idle);
    const trapper = a.spawn(async (self) => self.receive(isExit), { link: victim, trapExit: true });
    victim.kill();
    const exit = (await within(a.waitDown(trapper), 'trapper ends')).result as Exit;
    expect(exit.reason).toBe('killed');
    expect(exit.from?.equals(victim)).toBe(true);
  });

  it('exit(ref, reason): ends a non-trapping actor, is a message to a trapping one, and normal is ignored', async () => {
    const a = node({ name: 'a' });
    const plain = a.spawn(idle);
    const plainDown = a.waitDown(plain);
    a.exit(plain, 'normal');
    await settle(1);
    expect(a.isAlive(plain)).toBe(true);
    a.exit(plain, 'go away');
    expect((await within(plainDown, 'plain ends')).reason).toBe('go away');

    const trapper = a.spawn(async (self) => self.receive(isExit), { trapExit: true });
    trapper.exit({ custom: 'reason' });
    const exit = (await within(a.waitDown(trapper), 'trapper ends')).result as Exit;
    expect(exit.reason).toEqual({ custom: 'reason' });
    expect(exit.from).toBeUndefined();
  });

  it('an exit signal sent from a behaviour handler names the sender', async () => {
    const a = node({ name: 'a' });
    const trapper = a.spawn(async (self) => self.receive(isExit), { trapExit: true });
    const sender = a.spawn(
      behaviour<ActorRef, null>({
        init: () => null,
        handle: (target) => target.exit('from a peer'),
      }),
    );
    const trapperDown = a.waitDown(trapper);
    sender.send(trapper);
    const exit = (await within(trapperDown, 'trapper ends')).result as Exit;
    expect(exit.reason).toBe('from a peer');
    expect(exit.from?.equals(sender)).toBe(true);
  });
});

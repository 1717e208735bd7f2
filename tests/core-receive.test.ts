import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { createManualClock, TroupeError } from '../core/index.ts';
import { useNodes, within, settle, isPending } from './helpers/nodes.ts';

describe('selective receive', () => {
  const node = useNodes();

  it('rejects with TIMEOUT when nothing matches in time, and not before', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const seen: string[] = [];
    const actor = a.spawn(async (self) => {
      try {
        await self.receive((m) => m === 'never', { timeout: 100 });
        seen.push('matched');
      } catch (err) {
        seen.push((err as TroupeError).code);
      }
      return self.mailboxSize;
    });
    actor.send('other');
    await settle(1);
    clock.advance(99);
    await settle(1);
    expect(seen).toEqual([]);
    clock.advance(1);
    const down = await within(a.waitDown(actor), 'actor ends');
    expect(seen).toEqual(['TIMEOUT']);
    // The message that did not match is still in the mailbox after the timeout.
    expect(down.result).toBe(1);
  });

  it('leaves unmatched messages in the mailbox, in order, for later receives', async () => {
    const a = node({ name: 'a' });
    const actor = a.spawn(async (self) => {
      // Wait until all five are queued, so each receive below has to skip some.
      await self.receive((m) => m === 'go');
      const numbers = [
        await self.receive((m) => typeof m === 'number'),
        await self.receive((m) => typeof m === 'number'),
      ];
      const rest = [await self.receive(), await self.receive(), await self.receive()];
      return { numbers, rest, left: self.mailboxSize };
    });
    for (const m of ['a', 1, 'b', 2, 'c']) actor.send(m);
    actor.send('go');
    const down = await within(a.waitDown(actor), 'actor ends');
    expect(down.result).toEqual({ numbers: [1, 2], rest: ['a', 'b', 'c'], left: 0 });
  });

  it('keeps skipped messages in order when the match arrives while the actor waits', async () => {
    const a = node({ name: 'a' });
    const actor = a.spawn(async (self) => {
      const first = await self.receive((m) => m === 'wanted');
      const rest = [await self.receive(), await self.receive(), await self.receive()];
      return { first, rest };
    });
    await settle(1); // the actor is now blocked in receive
    for (const m of ['x', 'y', 'wanted', 'z']) actor.send(m);
    const down = await within(a.waitDown(actor), 'actor ends');
    expect(down.result).toEqual({ first: 'wanted', rest: ['x', 'y', 'z'] });
  });

  it('matches with a zod schema and resolves with the schema output', async () => {
    const a = node({ name: 'a' });
    const Order = z.object({
      type: z.literal('order'),
      qty: z.string().transform((s) => Number.parseInt(s, 10)),
    });
    const actor = a.spawn(async (self) => {
      const order = await self.receive(Order);
      const other = await self.receive();
      return { order, other };
    });
    actor.send({ type: 'note', text: 'skip me' });
    actor.send({ type: 'order', qty: '12' });
    const down = await within(a.waitDown(actor), 'actor ends');
    expect(down.result).toEqual({
      order: { type: 'order', qty: 12 },
      other: { type: 'note', text: 'skip me' },
    });
  });

  it('matches with a predicate (including a type guard)', async () => {
    const a = node({ name: 'a' });
    const isBig = (m: unknown): m is { n: number } =>
      typeof m === 'object' && m !== null && (m as { n: number }).n > 10;
    const actor = a.spawn(async (self) => {
      const big = await self.receive(isBig);
      return big.n;
    });
    actor.send({ n: 1 });
    actor.send({ n: 5 });
    actor.send({ n: 50 });
    expect((await within(a.waitDown(actor), 'actor ends')).result).toBe(50);
  });

  it('a timed-out receive does not lose a message that arrives afterwards', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const actor = a.spawn(async (self) => {
      const codes: string[] = [];
      await self
        .receive((m) => m === 'late', { timeout: 10 })
        .catch((e: TroupeError) => codes.push(e.code));
      const late = await self.receive((m) => m === 'late');
      return { codes, late };
    });
    await settle(1);
    clock.advance(10);
    await settle(1);
    actor.send('late');
    expect((await within(a.waitDown(actor), 'actor ends')).result).toEqual({
      codes: ['TIMEOUT'],
      late: 'late',
    });
  });

  it('a receive without timeout waits as long as it takes', async () => {
    const clock = createManualClock();
    const a = node({ name: 'a', clock });
    const actor = a.spawn(async (self) => self.receive((m) => m === 'done'));
    clock.advance(24 * 3600 * 1000);
    const down = a.waitDown(actor);
    expect(await isPending(down)).toBe(true);
    actor.send('done');
    expect((await within(down, 'actor ends')).result).toBe('done');
  });
});

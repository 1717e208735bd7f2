// Type tests: `npx tsc --noEmit -p tsconfig.json` checks this file. Every `@ts-expect-error` line
// must fail to compile (tsc reports an unused directive otherwise), so the wrong message types
// below are proven to be rejected. Vitest also runs it, so the right ones are proven to work.
import { describe, it, expect, expectTypeOf } from 'vitest';
import { z } from 'zod';
import {
  behaviour,
  reply,
  isDown,
  downOf,
  TroupeError,
  type ActorRef,
  type MessageOf,
  type Down,
  type Exit,
  type SystemMessage,
} from '../core/index.ts';
import { useNodes } from './helpers/nodes.ts';

const Greet = z.object({ name: z.string(), times: z.number().int().default(1) });
const Cmd = z.discriminatedUnion('op', [z.object({ op: z.literal('add'), n: z.number() }), z.object({ op: z.literal('reset') })]);

describe('ActorRef<M> inferred from a zod schema', () => {
  const node = useNodes();

  it('a process spawned with a schema: the right message compiles, the wrong one does not', async () => {
    const a = node({ name: 'a' });
    const greeter = a.spawn(
      async (self) => {
        const m = await self.receive();
        expectTypeOf(m).toEqualTypeOf<z.output<typeof Greet> | SystemMessage>();
        self.reply(`hello ${'name' in m ? m.name : '?'}`);
      },
      { schema: Greet },
    );
    // Senders send the schema's input type (fields with a default are optional); the actor
    // receives its output type (defaults filled in).
    expectTypeOf(greeter).toEqualTypeOf<ActorRef<z.input<typeof Greet>>>();
    expectTypeOf<MessageOf<typeof greeter>>().toEqualTypeOf<{ name: string; times?: number | undefined }>();
    if (false as boolean) greeter.send({ name: 'no times: the default applies' }); // compiles

    if (false as boolean) {
      // Compile-time only (never run): each line below must fail to type-check.
      // @ts-expect-error a number is not a Greet
      greeter.send(42);
      // @ts-expect-error `name` must be a string
      greeter.send({ name: 7, times: 1 });
      // @ts-expect-error `name` is required
      greeter.send({ times: 1 });
      // @ts-expect-error a call checks its message too
      void greeter.call({ nom: 'x', times: 1 });
    }
    // The right type compiles and works at run time.
    expect(await greeter.call({ name: 'Ada', times: 2 })).toBe('hello Ada');
  });

  it('the schema still guards at run time what the types cannot (a cast at the edge)', async () => {
    const a = node({ name: 'a' });
    const greeter = a.spawn(async (self) => self.receive(), { schema: Greet });
    // @ts-expect-error the wrong type: also rejected at run time by the schema
    const err = await greeter.call({ name: 7 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('INVALID_MESSAGE');
  });

  it('a behaviour infers M from its schema for handle and for the ref', async () => {
    const a = node({ name: 'a' });
    const acc = behaviour({
      schema: Cmd,
      init: () => 0,
      handle(m, total) {
        expectTypeOf(m).toEqualTypeOf<z.output<typeof Cmd>>();
        expectTypeOf(total).toEqualTypeOf<number>();
        return m.op === 'add' ? reply(total + m.n, total + m.n) : reply(0, 0);
      },
    });
    const ref = a.spawn(acc);
    expectTypeOf<MessageOf<typeof ref>>().toEqualTypeOf<z.output<typeof Cmd>>();
    if (false as boolean) {
      // @ts-expect-error 'mul' is not an op
      ref.send({ op: 'mul', n: 2 });
      // @ts-expect-error add needs n
      ref.send({ op: 'add' });
      // @ts-expect-error n must be a number
      void ref.call({ op: 'add', n: '2' });
    }
    expect(await ref.call({ op: 'add', n: 5 })).toBe(5);
    expect(await ref.call({ op: 'reset' })).toBe(0);
  });

  it('a child spawned with a schema from inside an actor is typed too', async () => {
    const a = node({ name: 'a' });
    const parent = a.spawn(async (self) => {
      const child = self.spawn(async (c) => c.reply((await c.receive(Greet)).name), { schema: Greet });
      expectTypeOf(child).toEqualTypeOf<ActorRef<z.input<typeof Greet>>>();
      if (false as boolean) {
        // @ts-expect-error wrong message for the child
        child.send('hello');
      }
      return self.call<string>(child, { name: 'child', times: 1 });
    });
    expect((await a.waitDown(parent)).result).toBe('child');
  });

  it('receive narrows: a schema gives its output, a type guard its type', async () => {
    const a = node({ name: 'a' });
    const gone = a.spawn(async () => undefined);
    await a.waitDown(gone);
    const p = a.spawn(async (self) => {
      const g = await self.receive(Greet);
      expectTypeOf(g).toEqualTypeOf<{ name: string; times: number }>();
      self.monitor(gone); // DOWN noproc at once
      const d = await self.receive(downOf(gone));
      expectTypeOf(d).toEqualTypeOf<Down>();
      expectTypeOf<ReturnType<typeof isDown>>().toEqualTypeOf<boolean>();
      expectTypeOf<Exit['reason']>().toBeUnknown();
      return [g.times, d.reason];
    });
    const pDown = a.waitDown(p);
    p.send({ name: 'x' }); // p has no schema (ActorRef<unknown>); receive(Greet) fills the default
    expect((await pDown).result).toEqual([1, 'noproc']);
  });
});

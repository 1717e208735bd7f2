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
  type AnyActorRef,
  type ReplyOf,
  type ExitReason,
  type ErrorCode,
  type CoreErrorCode,
  type Behaviour,
  type Node,
  type StreamReader,
  createNode,
} from '../core/index.ts';
import type { PatternErrorCode } from '../patterns/index.ts';
import { useNodes } from './helpers/nodes.ts';

const Greet = z.object({ name: z.string(), times: z.number().int().default(1) });
const Cmd = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), n: z.number() }),
  z.object({ op: z.literal('reset') }),
]);

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
    expectTypeOf<MessageOf<typeof greeter>>().toEqualTypeOf<{
      name: string;
      times?: number | undefined;
    }>();
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
      const child = self.spawn(async (c) => c.reply((await c.receive(Greet)).name), {
        schema: Greet,
      });
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

describe('typed replies, AnyActorRef, ExitReason, error codes', () => {
  const node = useNodes();

  it("a behaviour's reply type is inferred from reply(value, state) and types call()", async () => {
    const a = node({ name: 'a' });
    const counter = behaviour({
      schema: Cmd,
      init: () => 0,
      handle: (m, n) => (m.op === 'add' ? n + m.n : reply(n, 0)),
    });
    const ref = a.spawn(counter);
    expectTypeOf(ref).toEqualTypeOf<ActorRef<z.input<typeof Cmd>, number>>();
    expectTypeOf<ReplyOf<typeof ref>>().toEqualTypeOf<number>();
    expectTypeOf(ref.call({ op: 'reset' })).resolves.toEqualTypeOf<number>();
    ref.send({ op: 'add', n: 2 });
    const total = await ref.call({ op: 'reset' });
    expect(total + 1).toBe(3);
    if (false as boolean) {
      // @ts-expect-error the reply is a number, not a string
      const s: Promise<string> = ref.call({ op: 'reset' });
      void s;
    }
  });

  it('replies of several types make a union; a declared R types ctx.reply answers', async () => {
    const a = node({ name: 'a' });
    const two = behaviour({
      init: () => 0,
      handle: (m: 'n' | 's', n: number) => (m === 'n' ? reply(n, n) : reply(`#${n}`, n)),
    });
    const r2 = a.spawn(two);
    expectTypeOf<ReplyOf<typeof r2>>().toEqualTypeOf<number | string>();
    expect(await r2.call('s')).toBe('#0');
    const declared = behaviour<'get', undefined, undefined, { ok: true }>({
      handle: (_m, _s, ctx) => {
        ctx.reply({ ok: true });
      },
    });
    const r3 = a.spawn(declared);
    expectTypeOf(r3.call('get')).resolves.toEqualTypeOf<{ ok: true }>();
    expect(await r3.call('get')).toEqual({ ok: true });
  });

  it('plain objects (untyped JavaScript) and annotated refs keep working', async () => {
    const a = node({ name: 'a' });
    const plain: Behaviour<unknown> = { handle: (m, _s, ctx) => void ctx.reply(m) };
    const r = a.spawn(plain);
    expectTypeOf(r).toEqualTypeOf<ActorRef<unknown, unknown>>();
    expect(await r.call(7)).toBe(7);
    // The reply type may still come from an annotation (as before the inference).
    const annotated: ActorRef<unknown, number> = a.spawn(plain);
    expect(await annotated.call(8)).toBe(8);
  });

  it('every ref is an AnyActorRef; refs of unrelated message types do not mix', () => {
    const a = node({ name: 'a' });
    const nums = a.spawn(async (self) => self.receive(), { schema: z.number() });
    const keep: AnyActorRef[] = [nums, a.spawn(behaviour({ schema: Cmd, handle: () => {} }))];
    expect(keep).toHaveLength(2);
    expectTypeOf(nums).toExtend<AnyActorRef>();
    if (false as boolean) {
      // @ts-expect-error an ActorRef<number> is not an ActorRef<string>
      const s: ActorRef<string> = nums;
      void s;
      // @ts-expect-error nor does it take a string
      nums.send('x');
    }
  });

  it('ExitReason is a union, not unknown', () => {
    expectTypeOf<ExitReason>().not.toBeUnknown();
    expectTypeOf<'normal'>().toExtend<ExitReason>();
    expectTypeOf<{ custom: string }>().toExtend<ExitReason>();
    expectTypeOf<Down['reason']>().toEqualTypeOf<ExitReason>();
    if (false as boolean) {
      // @ts-expect-error a function cannot be an exit reason
      const r: ExitReason = () => 1;
      void r;
      // @ts-expect-error nor undefined
      const u: ExitReason = undefined;
      void u;
    }
  });

  it('the core error codes are closed; troupe/patterns adds its own by declaration merging', () => {
    expectTypeOf<'NO_WORKER'>().not.toExtend<CoreErrorCode>();
    expectTypeOf<PatternErrorCode>().toExtend<ErrorCode>();
    expectTypeOf<CoreErrorCode>().toExtend<ErrorCode>();
    expect(new TroupeError('NO_WORKER', 'x').code).toBe('NO_WORKER');
  });

  it('Node is the public facade: no _ members, and what an actor sees as self.node', async () => {
    expectTypeOf<Extract<keyof Node, `_${string}`>>().toBeNever();
    expectTypeOf<Extract<keyof Node, 'sendTo' | 'callTo' | 'exitTo'>>().toBeNever();
    const n = createNode();
    expectTypeOf(n).toEqualTypeOf<Node>();
    expect(Object.keys(n).filter((k) => k.startsWith('_'))).toEqual([]);
    const seen = n.spawn(
      behaviour({
        handle(_m: 'which', _s, ctx) {
          expectTypeOf(ctx.node).toEqualTypeOf<Node>();
          ctx.reply(ctx.node === n);
        },
      }),
    );
    expect(await seen.call('which')).toBe(true);
    expectTypeOf(n.stream<number>(seen, 'x')).toEqualTypeOf<StreamReader<number>>();
    await n.shutdown();
  });
});

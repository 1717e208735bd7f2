import { describe, it, expect } from 'vitest';
import { ActorRef, behaviour, reply } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { useNodes, within, until } from './helpers/nodes.ts';

const echo = async (self: { receive(): Promise<unknown>; reply(v: unknown): boolean }) => {
  for (;;) self.reply(await self.receive());
};

describe('refs travel between nodes', () => {
  const node = useNodes();

  it('a ref to an actor on A travels A→B→C inside a Map inside an array; C replies through it', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    const c = node({ name: 'c' });
    await connectMemory(a, b);
    await connectMemory(b, c);
    expect(a.peers()).toEqual(['b']); // no direct link A—C: C must route through B

    // On C: receive the envelope, reply through the ref found inside it, and echo that ref back.
    const onC = c.spawn(
      async (self) => {
        const msg = (await self.receive()) as { hops: string[]; list: Map<string, ActorRef>[] };
        const replyTo = msg.list[0].get('replyTo')!;
        replyTo.send({
          hello: 'from c',
          hops: [...msg.hops, 'c'],
          seenOnC: {
            key: replyTo.key,
            node: replyTo.node,
            boundTo: replyTo.boundTo,
            isRef: replyTo instanceof ActorRef,
          },
          sameRef: replyTo,
          list: msg.list,
        });
      },
      { name: 'on-c' },
    );
    // On B: forward what arrives to C's actor, re-encoding it (a full decode/encode hop).
    const onB = b.spawn(async (self) => {
      const msg = (await self.receive()) as { hops: string[] };
      self.node.send('on-c', { ...msg, hops: [...msg.hops, 'b'] });
    });
    await until(() => b.whereis('on-c') !== undefined, 'b learns on-c');

    const onA = a.spawn(async (self) => {
      a.ref(onB.node, onB.id).send({ hops: ['a'], list: [new Map([['replyTo', self.ref]])] });
      return self.receive();
    });
    const got = (await within(a.waitDown(onA), 'A receives the reply from C')).result as {
      hello: string;
      hops: string[];
      seenOnC: { key: string; node: string; boundTo: string; isRef: boolean };
      sameRef: ActorRef;
      list: Map<string, ActorRef>[];
    };
    expect(got.hello).toBe('from c');
    expect(got.hops).toEqual(['a', 'b', 'c']);
    // On C the ref was a real ActorRef, naming A's actor, bound to C (it sends from there).
    expect(got.seenOnC).toEqual({ key: onA.key, node: 'a', boundTo: 'c', isRef: true });
    // Back on A after A→B→C→A it still compares equal to the original.
    expect(got.sameRef).toBeInstanceOf(ActorRef);
    expect(got.sameRef.equals(onA)).toBe(true);
    expect(got.sameRef.key).toBe(onA.key);
    expect(got.sameRef.boundTo).toBe('a');
    expect(got.list[0]).toBeInstanceOf(Map);
    expect(got.list[0].get('replyTo')!.equals(onA)).toBe(true);
    expect(onC.node).toBe('c');
  });

  it('C can call an actor on A through a ref that reached it via B', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    const c = node({ name: 'c' });
    await connectMemory(a, b);
    await connectMemory(b, c);
    const counter = a.spawn(
      behaviour<'inc', number>({ init: () => 0, handle: (_m, n) => reply(n + 1, n + 1) }),
      { name: 'counter' },
    );
    const onC = c.spawn(async (self) => {
      const { target } = (await self.receive()) as { target: ActorRef<'inc'> };
      return [await target.call('inc'), await target.call('inc')];
    });
    const onB = b.spawn(async (self) => {
      const m = await self.receive();
      self.node.ref(onC.node, onC.id).send(m);
    });
    a.ref(onB.node, onB.id).send({ target: counter });
    expect((await within(c.waitDown(onC), 'C finishes its calls')).result).toEqual([1, 2]);
    // The calls really reached A's actor.
    expect(await counter.call('inc')).toBe(3);
  });

  it('refs nested in Sets, Map keys and objects survive a hop and compare by value', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const target = a.spawn(async (self) => self.receive());
    const bEcho = b.spawn(echo);
    const sent = {
      set: new Set([target]),
      keyed: new Map([[target, 'value']]),
      deep: { x: [{ y: target }] },
      error: new RangeError('out of range'),
    };
    const back = (await a.ref(bEcho.node, bEcho.id).call(sent)) as typeof sent;
    expect([...back.set][0].equals(target)).toBe(true);
    const [[k, v]] = [...back.keyed];
    expect(k.equals(target)).toBe(true);
    expect(v).toBe('value');
    expect(back.deep.x[0].y.equals(target)).toBe(true);
    expect(back.deep.x[0].y).not.toBe(target); // a new object, equal by value
    expect(back.error).toBeInstanceOf(Error);
    expect([back.error.name, back.error.message]).toEqual(['RangeError', 'out of range']);
  });

  it('Dates, Maps, Sets, BigInt and undefined round-trip across a link', async () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    await connectMemory(a, b);
    const e = b.spawn(echo);
    const remote = a.ref(e.node, e.id);
    const value = {
      when: new Date(Date.UTC(2024, 1, 29, 12, 0, 0)),
      map: new Map<unknown, unknown>([
        ['k', 1],
        [2, new Date(0)],
      ]),
      set: new Set([1, 'two', 3n]),
      big: 2n ** 100n,
      nothing: undefined,
      list: [undefined, null, -0, Number.NaN, Number.POSITIVE_INFINITY],
    };
    const back = (await remote.call(value)) as typeof value;
    expect(back).toEqual(value);
    expect(back.when).toBeInstanceOf(Date);
    expect(back.when.getTime()).toBe(value.when.getTime());
    expect(back.map).toBeInstanceOf(Map);
    expect(back.set).toBeInstanceOf(Set);
    expect(typeof back.big).toBe('bigint');
    expect(back.big).toBe(2n ** 100n);
    expect('nothing' in back).toBe(true);
    expect(back.nothing).toBeUndefined();
    expect(Object.is(back.list[2], -0)).toBe(true);
    expect(Number.isNaN(back.list[3])).toBe(true);
    // Top-level values that are not JSON.
    expect(await remote.call(undefined)).toBeUndefined();
    expect(await remote.call(7n)).toBe(7n);
    // A plain JSON message is unchanged too (the fast path).
    expect(await remote.call({ a: [1, 'x', true, null] })).toEqual({ a: [1, 'x', true, null] });
  });

  it('refs made on different nodes for one actor are equal, and key is stable', () => {
    const a = node({ name: 'a' });
    const b = node({ name: 'b' });
    const r1 = a.ref('a', 5);
    const r2 = b.ref('a', 5);
    expect(r1.equals(r2)).toBe(true);
    expect(r1.key).toBe(r2.key);
    expect(r1.equals(a.ref('a', 6))).toBe(false);
    expect(r1.equals({ node: 'a', id: 5 })).toBe(false);
    expect(JSON.parse(JSON.stringify(r1))).toEqual({ node: 'a', id: 5 });
  });
});

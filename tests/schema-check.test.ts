// core/schema-check.ts: the compiled check in front of an actor's zod schema must accept exactly
// what zod accepts and give exactly zod's output, for every input; shapes it cannot vouch for go
// to zod. Compared here with zod itself over common and hostile inputs, then through real actors.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { behaviour, createNode } from '../core/index.ts';
import { checkOf, SchemaCheck } from '../core/schema-check.ts';

const Msg = z.object({ kind: z.literal('inc'), n: z.number(), tag: z.string() });
const Nested = z.object({ a: z.object({ b: z.boolean(), c: z.literal(3) }), s: z.string() });

const inputs: unknown[] = [
  { kind: 'inc', n: 1, tag: 'x' },
  { tag: 'x', n: -0, kind: 'inc', extra: { deep: 1 } },
  { kind: 'inc', n: Number.NaN, tag: 'x' },
  { kind: 'inc', n: Number.POSITIVE_INFINITY, tag: 'x' },
  { kind: 'inc', n: 1e308, tag: '' },
  { kind: 'dec', n: 1, tag: 'x' },
  { kind: 'inc', n: '1', tag: 'x' },
  { kind: 'inc', tag: 'x' },
  { kind: 'inc', n: 1, tag: 'x', __proto__: { polluted: true } },
  Object.assign(Object.create(null), { kind: 'inc', n: 2, tag: 'y' }),
  new (class {
    kind = 'inc';
    n = 3;
    tag = 'z';
  })(),
  [1, 2],
  null,
  undefined,
  'inc',
  7,
  { a: { b: true, c: 3 }, s: 's' },
  { a: { b: 1, c: 3 }, s: 's' },
  { a: { b: false, c: 3, x: 1 }, s: 's', y: 2 },
  { a: null, s: 's' },
  { a: [], s: 's' },
];

function agree(schema: z.ZodType): void {
  const check = checkOf(schema, new WeakMap());
  for (const input of inputs) {
    const want = schema.safeParse(input);
    const got = check.safeParse(input);
    expect(got.success, JSON.stringify(input)).toBe(want.success);
    if (got.success && want.success) {
      expect(got.data).toStrictEqual(want.data);
      expect(Object.keys(got.data as object)).toEqual(Object.keys(want.data as object));
    }
  }
}

describe('schema checks', () => {
  it('compile the common shapes and give zod’s answer and output for every input', () => {
    expect(checkOf(Msg, new WeakMap())).toBeInstanceOf(SchemaCheck);
    expect(checkOf(Nested, new WeakMap())).toBeInstanceOf(SchemaCheck);
    agree(Msg);
    agree(Nested);
    agree(z.string());
    agree(z.number());
    const odd = z.object({
      'a"b': z.string(),
      '\u2028': z.number(),
      1: z.boolean(),
      'x\\': z.literal('y'),
    });
    expect(checkOf(odd, new WeakMap())).toBeInstanceOf(SchemaCheck);
    inputs.push({ 'a"b': 's', '\u2028': 2, 1: true, 'x\\': 'y', z: 0 });
    agree(odd);
  });

  it('leave to zod what they cannot vouch for: refinements, transforms, optional, strict, coercion', () => {
    const others: z.ZodType[] = [
      Msg.refine((m) => m.n > 0),
      Msg.strict(),
      z.looseObject({ n: z.number() }),
      z.object({ n: z.number().int() }),
      z.object({ n: z.number().optional() }),
      z.object({ s: z.string().trim() }),
      z.object({ s: z.coerce.string() }),
      z.object({ n: z.number().default(1) }),
      z.object({ s: z.string() }).transform((o) => o.s),
      z.union([z.string(), z.number()]),
      z.object({ ['__proto__']: z.string() }),
    ];
    for (const s of others) {
      expect(checkOf(s, new WeakMap())).toBe(s);
      agree(s);
    }
  });

  it('one check per schema per node, and an actor still reports what its schema rejects', async () => {
    const cache = new WeakMap();
    expect(checkOf(Msg, cache)).toBe(checkOf(Msg, cache));
    const node = createNode({ name: 'schema-check' });
    const seen: unknown[] = [];
    const invalid: string[] = [];
    node.events.on('invalidMessage', (e) => invalid.push(e.error.code));
    const ref = node.spawn(
      behaviour({
        schema: Msg,
        handle(m, _s, ctx) {
          seen.push(m);
          ctx.reply(m.n);
        },
      }),
    );
    const sent = { tag: 't', n: 5, kind: 'inc' as const, extra: 1 };
    expect(await ref.call(sent)).toBe(5);
    expect(seen[0]).toStrictEqual({ kind: 'inc', n: 5, tag: 't' });
    expect(seen[0]).not.toBe(sent);
    const err = await ref.call({ kind: 'inc', n: Number.NaN, tag: 't' }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('INVALID_MESSAGE');
    expect(invalid).toEqual(['INVALID_MESSAGE']);
    await node.shutdown();
  });
});

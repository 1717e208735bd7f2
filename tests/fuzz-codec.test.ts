// Issue 6 — fuzzing the message codec (core/codec.ts), which decodes every payload a peer sends.
// Properties: what the codec encodes it decodes to an equal value; random text never makes
// decode throw anything but INVALID_MESSAGE; prototype-pollution keys (`__proto__`,
// `constructor`, `prototype`, in plain JSON and in superjson's meta paths) never reach a
// prototype; the depth limit is exact on both ends; superjson's reference table cannot hand an
// actor a cyclic message; refs are bound only from well-formed data.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ActorRef, TroupeError } from '../core/index.ts';
import { Codec } from '../core/codec.ts';
import { guardProcess, params } from './helpers/fuzz.ts';

guardProcess();

const MAX_DEPTH = 16;
const bound: { node: string; id: number; addrs?: string[] }[] = [];
const host = { sendTo() {}, callTo: () => Promise.resolve(), exitTo() {} };
const codec = new Codec(
  (node, id, addrs) => {
    bound.push({ node, id, addrs });
    return new ActorRef(host as never, node, id);
  },
  { maxDepth: MAX_DEPTH },
);

/** Nothing was added to Object.prototype (or Array's, Function's). */
function prototypesClean(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(CLEAN_OBJECT);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
}
const CLEAN_OBJECT = Object.getOwnPropertyNames(Object.prototype).sort();

/** decode() either returns or throws a TroupeError INVALID_MESSAGE; returns what happened. */
function tryDecode(
  payload: string,
): { ok: true; value: unknown } | { ok: false; error: TroupeError } {
  try {
    return { ok: true, value: codec.decode(payload) };
  } catch (error) {
    expect(error).toBeInstanceOf(TroupeError);
    expect((error as TroupeError).code).toBe('INVALID_MESSAGE');
    return { ok: false, error: error as TroupeError };
  }
}

/** Whether `v` has an own key among `keys` anywhere. */
function hasOwnKey(v: unknown, keys: readonly string[], depth = 0): boolean {
  if (depth > 64 || v === null || typeof v !== 'object') return false;
  if (keys.some((k) => Object.prototype.hasOwnProperty.call(v, k))) return true;
  const values =
    v instanceof Map ? [...v.keys(), ...v.values()] : v instanceof Set ? [...v] : Object.values(v);
  return values.some((x) => hasOwnKey(x, keys, depth + 1));
}
/** An own `__proto__` key (JSON.parse makes those; decode refuses them). */
const hasProtoKey = (v: unknown) => hasOwnKey(v, ['__proto__']);

const dangerousKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
);
const key = fc.oneof(fc.string({ maxLength: 8 }), dangerousKey);

describe('codec under fuzzing', () => {
  it('round trip: what encode accepts, decode returns equal (JSON values, Dates, Maps, Sets, BigInts, undefined)', () => {
    const value = fc.anything({
      maxDepth: 6,
      key,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: false,
      withTypedArray: false,
      withSparseArray: false,
    });
    // An invalid Date decodes as null (superjson writes it as null): known, not a security matter.
    const invalidDate = (v: unknown, d = 0): boolean =>
      d < 64 &&
      (v instanceof Date
        ? Number.isNaN(v.getTime())
        : v !== null &&
          typeof v === 'object' &&
          [
            ...(v instanceof Map
              ? [...v.keys(), ...v.values()]
              : v instanceof Set
                ? v
                : Object.values(v)),
          ].some((x) => invalidDate(x, d + 1)));
    fc.assert(
      fc.property(value, (v) => {
        fc.pre(!invalidDate(v));
        let payload: string;
        try {
          payload = codec.encode(v);
        } catch (err) {
          // Only what the limits refuse (excess depth), or, in a value that needs superjson, a key
          // superjson refuses to annotate (`__proto__`, `constructor`, `prototype`): SERIALIZATION.
          const code = (err as TroupeError).code;
          if (code !== 'INVALID_MESSAGE') {
            expect(code).toBe('SERIALIZATION');
            expect(hasOwnKey(v, ['__proto__', 'constructor', 'prototype'])).toBe(true);
          }
          return;
        }
        const r = tryDecode(payload);
        if (r.ok) expect(r.value).toEqual(v);
        else expect(hasProtoKey(v) || /nests too deeply/.test(r.error.message)).toBe(true);
        prototypesClean();
      }),
      params(0.1),
    );
  });

  it('random text: decode returns a value or throws INVALID_MESSAGE, nothing else, and pollutes nothing', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ maxLength: 300 }).map((s) => `j${s}`),
      fc.string({ maxLength: 300 }).map((s) => `s${s}`),
      fc.json({ maxDepth: 6 }).map((s) => `j${s}`),
      fc.json({ maxDepth: 6 }).map((s) => `s${s}`),
    );
    fc.assert(
      fc.property(text, (payload) => {
        tryDecode(payload);
        prototypesClean();
      }),
      params(0.1),
    );
  });

  it('prototype-pollution keys in plain JSON and in superjson meta paths never reach a prototype', () => {
    const segment = fc.oneof(dangerousKey, fc.constantFrom('a', 'b', '0', 'x'));
    const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((p) => p.join('.'));
    // JSON text with dangerous keys at random places (JSON.stringify would not write __proto__ as a key).
    const jsonWithKeys: fc.Arbitrary<string> = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom('1', '"v"', 'null', 'true', '{}', '[]'),
        fc
          .array(fc.tuple(key, tie('node')), { maxLength: 4 })
          .map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
        fc.array(tie('node'), { maxLength: 3 }).map((xs) => `[${xs.join(',')}]`),
      ),
    })).node as fc.Arbitrary<string>;
    const metaKind = fc.constantFrom(
      'undefined',
      'bigint',
      'Date',
      'regexp',
      'set',
      'map',
      'Error',
      'number',
      ['class', 'X'],
      ['custom', 'troupe.ref'],
      ['symbol', 'S'],
    );
    const superjson = fc
      .record({
        json: jsonWithKeys,
        values: fc.array(fc.tuple(path, metaKind), { maxLength: 3 }),
        refs: fc.array(fc.tuple(path, fc.array(path, { minLength: 1, maxLength: 2 })), {
          maxLength: 2,
        }),
      })
      .map(({ json, values, refs }) => {
        const v = values.map(([p, k]) => `${JSON.stringify(p)}:${JSON.stringify([k])}`).join(',');
        const r = refs.map(([p, ps]) => `${JSON.stringify(p)}:${JSON.stringify(ps)}`).join(',');
        return `s{"json":${json},"meta":{"values":{${v}},"referentialEqualities":{${r}}}}`;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          jsonWithKeys.map((j) => `j${j}`),
          superjson,
        ),
        (payload) => {
          const r = tryDecode(payload);
          prototypesClean();
          if (r.ok && r.value !== null && typeof r.value === 'object') {
            // A decoded object's prototype is a built-in one, never one the peer chose.
            const proto = Object.getPrototypeOf(r.value);
            expect([
              Object.prototype,
              Array.prototype,
              Map.prototype,
              Set.prototype,
              Date.prototype,
              RegExp.prototype,
              Error.prototype,
              ActorRef.prototype,
              null,
            ]).toContain(proto);
            expect(hasProtoKey(r.value)).toBe(false);
          }
        },
      ),
      params(0.1),
    );
  });

  it('depth: decode refuses JSON nested deeper than maxDepth, accepts up to it; encode agrees', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 * MAX_DEPTH }),
        fc.constantFrom('[', '{"k":'),
        (depth, open) => {
          const close = open === '[' ? ']' : '}';
          const text = `${open.repeat(depth)}0${close.repeat(depth)}`;
          const r = tryDecode(`j${text}`);
          expect(r.ok).toBe(depth <= MAX_DEPTH);
          let encoded = true;
          try {
            codec.encode(JSON.parse(text));
          } catch (err) {
            expect((err as TroupeError).code).toBe('INVALID_MESSAGE');
            encoded = false;
          }
          expect(encoded).toBe(depth <= MAX_DEPTH);
        },
      ),
      params(0.02),
    );
  });

  it('superjson reference tables cannot make a cyclic or over-deep message', () => {
    // Regression: `referentialEqualities` could point a container at itself (a Set holding itself,
    // an object whose field is the object): an actor got a cyclic message from a peer.
    const cyclic = [
      's{"json":{"x":[1]},"meta":{"values":{"x":["set"]},"referentialEqualities":{"x":["x.0"]}}}',
      // not a cycle: an inherited method (Object.prototype.valueOf) copied into the message
      's{"json":{},"meta":{"referentialEqualities":{"valueOf":["a"]}}}',
      's{"json":{"a":{"b":null}},"meta":{"referentialEqualities":{"a":["a.b"]}}}',
      's{"json":[{"c":1},null],"meta":{"referentialEqualities":{"0":["1", "0.c"]}}}',
    ];
    for (const p of cyclic) {
      const r = tryDecode(p);
      expect(r.ok, p).toBe(false);
    }
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'a.b', 'a.b.c', 'x', 'x.0', 'x.0.y', '0', '1'), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.constantFrom('a', 'a.b', 'x', 'x.0', '0'),
        (targets, source) => {
          const p = `s{"json":{"a":{"b":{"c":1}},"x":[{"y":2}],"0":{}},"meta":{"referentialEqualities":{${JSON.stringify(source)}:${JSON.stringify(targets)}}}}`;
          const r = tryDecode(p);
          if (r.ok) expect(() => codec.encode(r.value)).not.toThrow(); // acyclic and within depth: it re-encodes
        },
      ),
      params(0.02),
    );
  });

  it('refs are bound only from well-formed data (node id 1..256 chars, positive safe integer id, ≤16 short addresses)', () => {
    const refData = fc.oneof(
      fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.integer({ min: 1, max: 2 ** 40 })),
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.array(fc.string({ maxLength: 30 }), { maxLength: 4 }),
      ),
      fc.anything({ maxDepth: 2 }),
      fc.tuple(
        fc.constantFrom('', 'x'.repeat(300), 5, null),
        fc.constantFrom(0, -1, 1.5, 2 ** 60, '7', NaN),
      ),
      fc.tuple(
        fc.string({ minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.string({ maxLength: 600 }), { minLength: 17, maxLength: 18 }),
      ),
    );
    fc.assert(
      fc.property(refData, (data) => {
        bound.length = 0;
        const json = JSON.stringify(data) ?? 'null';
        const r = tryDecode(`s{"json":${json},"meta":{"values":[["custom","troupe.ref"]]}}`);
        if (r.ok) {
          expect(r.value).toBeInstanceOf(ActorRef);
          expect(bound).toHaveLength(1);
          const b = bound[0];
          expect(b.node.length).toBeGreaterThanOrEqual(1);
          expect(b.node.length).toBeLessThanOrEqual(256);
          expect(Number.isSafeInteger(b.id) && b.id > 0).toBe(true);
          expect((b.addrs ?? []).length).toBeLessThanOrEqual(16);
        } else {
          expect(bound).toHaveLength(0);
        }
      }),
      params(0.05),
    );
  });

  it('huge strings and wide arrays decode (within the frame limit, the codec sets no size limit of its own)', () => {
    const big = 'é'.repeat(2_000_000);
    expect(codec.decode(codec.encode({ big }))).toEqual({ big });
    const wide = Array.from({ length: 200_000 }, (_, i) => i);
    expect(codec.decode(codec.encode(wide))).toEqual(wide);
    prototypesClean();
  });
});

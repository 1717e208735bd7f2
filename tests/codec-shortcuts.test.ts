// The codec's checks at their boundaries (core/codec.ts), for anyone who makes them cheaper:
// decode refuses exactly what nests past maxDepth (also in the superjson and binary codecs, whose
// raw JSON may nest maxDepth + 4) and every `__proto__` key however it is spelled; encode skips
// stringifyJson's look for a long string when its one walk (`scan`) met none, and its text stays
// JSON.stringify's wherever a long string sits.
import { describe, expect, it } from 'vitest';
import { Codec } from '../core/codec.ts';
import { TroupeError } from '../core/errors.ts';
import { LONG_STRING } from '../core/json-text.ts';

/** How many values json-text's stringifyJson looks at for a long string (its LOOK_LIMIT). */
const LOOK_LIMIT = 64;

const MAX_DEPTH = 16;
const codec = new Codec(
  () => {
    throw new Error('no refs here');
  },
  { maxDepth: MAX_DEPTH },
);

function decodeError(payload: string): TroupeError | undefined {
  try {
    codec.decode(payload);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(TroupeError);
    return err as TroupeError;
  }
}

/** `depth` nested containers of kind `open` around `inner` (arrays `[`, objects `{"k":`). */
function nest(depth: number, open: '[' | '{"k":', inner = '0'): string {
  const close = open === '[' ? ']' : '}';
  return `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
}

/** The same payload in the three JSON-carrying codecs: `j`, `s` (superjson), `b` (binary). */
function inAllCodecs(json: string): string[] {
  const sj = `{"json":${json}}`;
  return [`j${json}`, `s${sj}`, `b${sj.length},1:${sj}A`];
}

describe('codec checks at their boundaries', () => {
  it('depth: exactly maxDepth nesting decodes, one more is refused, short and long texts alike', () => {
    for (const open of ['[', '{"k":'] as const) {
      // Short texts (the least a nesting past maxDepth takes) and texts padded past that length.
      for (const pad of ['', `,"${'p'.repeat(4 * MAX_DEPTH)}"`]) {
        const ok = open === '[' ? `[${nest(MAX_DEPTH - 1, open)}${pad}]` : nest(MAX_DEPTH, open);
        const deep = open === '[' ? `[${nest(MAX_DEPTH, open)}${pad}]` : nest(MAX_DEPTH + 1, open);
        expect(decodeError(`j${ok}`)).toBeUndefined();
        expect(codec.decode(`j${ok}`)).toEqual(JSON.parse(ok));
        expect(decodeError(`j${deep}`)?.code).toBe('INVALID_MESSAGE');
      }
    }
    // Exactly 2 * maxDepth + 1 characters: the length shortcut; the walk would agree.
    const edge = `${'['.repeat(MAX_DEPTH)}${']'.repeat(MAX_DEPTH)}`;
    expect(edge.length).toBe(2 * MAX_DEPTH);
    expect(codec.decode(`j${edge}`)).toEqual(JSON.parse(edge));
    const over = `${'['.repeat(MAX_DEPTH + 1)}${']'.repeat(MAX_DEPTH + 1)}`;
    expect(decodeError(`j${over}`)?.code).toBe('INVALID_MESSAGE');
  });

  it('depth: many openers that do not nest (or sit inside strings) still decode', () => {
    const wide = JSON.stringify(Array.from({ length: 3 * MAX_DEPTH }, (_, i) => ({ i, a: [i] })));
    expect(codec.decode(`j${wide}`)).toEqual(JSON.parse(wide));
    const inStrings = JSON.stringify({
      s: '{'.repeat(5 * MAX_DEPTH),
      t: '['.repeat(5 * MAX_DEPTH),
    });
    expect(codec.decode(`j${inStrings}`)).toEqual(JSON.parse(inStrings));
  });

  it('depth in the superjson and binary codecs: the decoded value and the raw JSON (maxDepth + 4) both hold', () => {
    for (const open of ['[', '{"k":'] as const) {
      // The value: maxDepth decodes, one more is refused.
      for (const payload of inAllCodecs(nest(MAX_DEPTH, open)).slice(1))
        expect(decodeError(payload), payload.slice(0, 40)).toBeUndefined();
      for (const payload of inAllCodecs(nest(MAX_DEPTH + 1, open)).slice(1))
        expect(decodeError(payload)?.code).toBe('INVALID_MESSAGE');
      // The raw JSON, deep where the value is not (an unknown meta field): 1 + 1 + n containers.
      const raw = (n: number) => `{"json":1,"meta":{"x":${nest(n, open)}}}`;
      const edge = MAX_DEPTH + 4 - 2;
      for (const text of [raw(edge), raw(edge + 1)]) {
        for (const payload of [`s${text}`, `b${text.length},1:${text}A`]) {
          const err = decodeError(payload);
          if (text === raw(edge)) expect(err, payload.slice(0, 40)).toBeUndefined();
          else expect(err?.message).toBe('message nests too deeply');
        }
      }
    }
  });

  it('a __proto__ key is refused however it is spelled, at any depth, in every codec', () => {
    const spellings = [
      '__proto__',
      '\\u005f_proto__',
      '_\\u005fproto__',
      '__pro\\u0074o__',
      '\\u005F\\u005F\\u0070\\u0072\\u006F\\u0074\\u006F\\u005F\\u005F',
    ];
    for (const key of spellings) {
      expect(JSON.parse(`{"${key}":1}`)).toHaveProperty(['__proto__']);
      for (const json of [
        `{"${key}":{"polluted":true}}`,
        `{"a":[1,{"${key}":1}]}`,
        `[{"b":{"c":{"${key}":null}}}]`,
      ]) {
        for (const payload of inAllCodecs(json)) {
          const err = decodeError(payload);
          expect(err?.code, payload).toBe('INVALID_MESSAGE');
          expect(err?.message, payload).toMatch(/__proto__/);
        }
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('__proto__ as a value, or \\u escapes that spell something else, decode as before', () => {
    for (const json of [
      '{"k":"__proto__"}',
      '{"k":"\\u0041\\ud83d\\ude00"}',
      '{"\\u0041":1}',
      '["\\\\u005f_proto__"]',
      '{"k":"\\ud800"}',
    ]) {
      expect(codec.decode(`j${json}`)).toEqual(JSON.parse(json));
    }
  });

  it('encode: a long string near the top or deep, early or late, gives the JSON.stringify text', () => {
    const long = 'x'.repeat(LONG_STRING);
    const values: unknown[] = [
      { a: long },
      { a: { b: { c: long } } },
      { a: { b: { c: { d: long } } } },
      [long, long],
      Array.from({ length: LOOK_LIMIT + 5 }, (_, i) => (i === LOOK_LIMIT - 1 ? long : i)),
      Array.from({ length: LOOK_LIMIT + 5 }, (_, i) => (i === LOOK_LIMIT + 2 ? long : i)),
      { q: `${long}"\\\u0001\ud800`, n: [1, 2.5, -3, null, true] },
      { small: 'x', n: 1 },
    ];
    for (const v of values) {
      expect(codec.encode(v)).toBe(`j${JSON.stringify(v)}`);
      expect(codec.decode(codec.encode(v))).toEqual(v);
    }
    // After a value that is not plain JSON (superjson), the next plain one is still right.
    expect(codec.encode({ d: new Date(0), s: long })[0]).toBe('s');
    expect(codec.encode({ s: 'short' })).toBe('j{"s":"short"}');
  });
});

// The fast JSON text of long strings (core/json-text.ts, issue 14's bulk cost): byte for byte
// what JSON.stringify writes, and what JSON.parse reads, for strings with and without characters
// to escape, lone surrogates, nested values; malformed text still throws.
import { describe, expect, it } from 'vitest';
import { isVerbatim, LONG_STRING, parseJson, quoteJson, stringifyJson } from '../core/json-text.ts';
import { Codec, CODEC_TEXT } from '../core/codec.ts';

const long = (fill: string, n = LONG_STRING * 3) => fill.repeat(Math.ceil(n / fill.length));
const specials = [
  '"',
  '\\',
  ...Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)),
  '\ud800',
  '\udfff',
  'é',
  '😀',
  '\u2028',
];

describe('json-text', () => {
  it('quotes long strings exactly as JSON.stringify, specials anywhere', () => {
    const cases = [long('b'), long('é'), long('😀'), long('ab c'), ''.padEnd(LONG_STRING, 'x')];
    for (const sp of specials)
      for (const at of [0, 1, LONG_STRING, LONG_STRING * 3 - 1]) {
        const s = long('q');
        cases.push(s.slice(0, at) + sp + s.slice(at));
      }
    for (const s of cases) {
      expect(quoteJson(s)).toBe(JSON.stringify(s));
      expect(parseJson(`j${JSON.stringify(s)}`, 1)).toBe(s);
    }
  });

  it('stringifies values holding long strings exactly as JSON.stringify', () => {
    const codec = new Codec(
      () => {
        throw new Error('no refs here');
      },
      { maxDepth: 64 },
    );
    const values: unknown[] = [
      { '~s': 'chunk', i: 3, v: long('x') },
      [1, 'a', long('y'), { k: [null, true, 2.5, long('z') + '"'] }],
      { a: { b: { c: { d: long('deep') } } } },
      { 2: 'two', 1: long('one'), b: false, a: -3 },
      Object.assign(Object.create(null), { k: long('n') }),
      { short: 'x', n: 1 },
      Array.from({ length: 200 }, (_, i) => (i === 150 ? long('late') : i)),
      42,
      null,
      true,
    ];
    // stringifyJson, and the codec (which calls it only when its scan met a long string).
    for (const v of values) {
      expect(stringifyJson(v)).toBe(JSON.stringify(v));
      expect(codec.encode(v)).toBe(`j${JSON.stringify(v)}`);
    }
  });

  it('parses like JSON.parse and throws on malformed text', () => {
    const s = long('m');
    expect(parseJson(`j${JSON.stringify({ v: s })}`, 1)).toEqual({ v: s });
    for (const bad of [`"${s}`, `"${s}"x"`, `"${s}\\"`, `"${s}\u0001"`, `"${s}" "`])
      expect(() => parseJson(`j${bad}`, 1)).toThrow(SyntaxError);
    // An inner quote in a long literal is not a string: JSON.parse decides (and refuses).
    expect(() => parseJson(`"${s}"${s}"`, 0)).toThrow(SyntaxError);
  });

  it('codec `t`: a long string without `\n` or a lone surrogate travels as itself and decodes to itself; others stay JSON', () => {
    const codec = new Codec(
      () => {
        throw new Error('no refs here');
      },
      { maxDepth: 64 },
    );
    const verbatim = [long('b'), long('é'), long('😀'), long('"\\\t\r\u0001'), long('ab c')];
    for (const s of verbatim) {
      expect(isVerbatim(s)).toBe(true);
      const payload = codec.encode(s);
      expect(payload).toBe(CODEC_TEXT + s);
      expect(codec.decode(payload)).toBe(s);
    }
    // A newline (the envelope separator), a lone surrogate or a short string: JSON as before.
    const json = [
      long('x') + '\n',
      `\ud800${long('y')}`,
      `${long('z')}\udfff`,
      'short',
      'x'.repeat(LONG_STRING - 1),
    ];
    for (const s of json) {
      expect(isVerbatim(s)).toBe(false);
      const payload = codec.encode(s);
      expect(payload).toBe(`j${JSON.stringify(s)}`);
      expect(codec.decode(payload)).toBe(s);
    }
    // Whatever follows `t` is the string (a peer's text is never parsed), even empty.
    expect(codec.decode('t')).toBe('');
    expect(codec.decode('t{"a":1}\n')).toBe('{"a":1}\n');
  });
});

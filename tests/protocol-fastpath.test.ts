// The hot-path header validator must accept exactly what the zod schemas accept for the traffic
// envelopes (s, c, r): never more (a hostile header slipping past validation), and for valid
// headers the same fields.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import {
  EnvelopeHeader,
  fastHeader,
  parseHeader,
  directHeader,
  parseDirectHeader,
  directFields,
  TrafficHeaders,
  DIRECT_SEND,
  DIRECT_CALL,
  DIRECT_REPLY,
} from './helpers/envelope.ts';

const anyValue = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.integer({ min: -5, max: 300 }),
  fc.double(),
  fc.constantFrom(0, 1, -1, 2 ** 53, 1.5, NaN, Infinity, '', null, undefined, true, [], {}),
);
const nodeId = fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), anyValue);
const header = fc.record(
  {
    t: fc.constantFrom('s', 'c', 'r', 'x', 'hb', 'zz', 1),
    n: nodeId,
    o: nodeId,
    h: fc.oneof(fc.integer({ min: 0, max: 255 }), anyValue),
    a: fc.oneof(fc.integer({ min: 1, max: 1e6 }), anyValue),
    c: fc.oneof(fc.integer({ min: 1, max: 1e6 }), anyValue),
    k: fc.oneof(fc.constantFrom(0, 1), anyValue),
    f: fc.oneof(fc.constant(1), anyValue),
    extra: anyValue,
  },
  { requiredKeys: ['t'] },
);

describe('fastHeader agrees with the zod EnvelopeHeader schema', () => {
  it('never accepts what zod rejects; accepts every valid s/c/r header with the same fields', () => {
    fc.assert(
      fc.property(header, (raw) => {
        const fast = fastHeader(raw);
        const slow = EnvelopeHeader.safeParse(raw);
        if (fast !== undefined) {
          expect(slow.success).toBe(true);
          for (const [k, v] of Object.entries(slow.data!))
            expect((fast as Record<string, unknown>)[k]).toEqual(v);
        } else if (slow.success && ['s', 'c', 'r'].includes(slow.data.t)) {
          throw new Error(`fast path rejected a valid header: ${JSON.stringify(raw)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts well-formed traffic headers', () => {
    expect(fastHeader({ t: 's', n: 'b', o: 'a', h: 0, a: 1 })).toBeDefined();
    expect(fastHeader({ t: 'c', n: 'b', o: 'a', h: 3, a: 1, c: 9 })).toBeDefined();
    expect(fastHeader({ t: 'r', n: 'b', o: 'a', h: 0, c: 9, k: 0 })).toBeDefined();
    expect(fastHeader({ t: 's', n: '', o: 'a', h: 0, a: 1 })).toBeUndefined();
    expect(fastHeader({ t: 's', n: 'b', o: 'a', h: 256, a: 1 })).toBeUndefined();
    expect(fastHeader({ t: 'c', n: 'b', o: 'a', h: 0, a: 1 })).toBeUndefined();
  });
});

describe('parseHeader reads canonical headers exactly as JSON.parse does', () => {
  const id = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('a"b', 'c\\d', 'é', '\n', ''));
  const int = fc.oneof(
    fc.integer({ min: 0, max: 2 ** 31 }),
    fc.constantFrom(0, 2 ** 53 - 1, 2 ** 52 + 7, 4503599627370497),
  );
  const headers = fc.record(
    {
      t: fc.constantFrom('s', 'c', 'r', 'x', 'sp'),
      n: id,
      o: id,
      h: int,
      a: int,
      c: int,
      k: fc.constantFrom(0, 1),
    },
    { requiredKeys: ['t', 'n', 'o'] },
  );

  it('on headers as the node writes them', () => {
    fc.assert(
      fc.property(headers, (h) => {
        const text = JSON.stringify(h);
        expect(parseHeader(text)).toEqual(JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('on mutated text: same value, or the same failure', () => {
    fc.assert(
      fc.property(headers, fc.nat(60), fc.string({ maxLength: 3 }), (h, at, insert) => {
        const base = JSON.stringify(h);
        const text = base.slice(0, at) + insert + base.slice(at + insert.length);
        let expected: unknown;
        try {
          expected = JSON.parse(text);
        } catch {
          expect(() => parseHeader(text)).toThrow();
          return;
        }
        expect(parseHeader(text)).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves numbers past 2^53, leading zeros and escapes to JSON.parse', () => {
    expect(parseHeader('{"t":"s","n":"b","o":"a","h":0,"a":9007199254740993}')).toEqual(
      JSON.parse('{"t":"s","n":"b","o":"a","h":0,"a":9007199254740993}'),
    );
    expect(() => parseHeader('{"t":"s","n":"b","o":"a","h":01,"a":1}')).toThrow();
    expect(parseHeader('{"t":"s","n":"b\\"q","o":"a","h":0,"a":1}')).toEqual({
      t: 's',
      n: 'b"q',
      o: 'a',
      h: 0,
      a: 1,
    });
  });
});

describe('direct envelopes (S<a>, C<a>,<c>, R<c>,<k>)', () => {
  const safe = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
  const traffic = fc.oneof(
    safe.map((a) => ({ kind: DIRECT_SEND, x: a, y: 0 })),
    fc.tuple(safe, safe).map(([a, c]) => ({ kind: DIRECT_CALL, x: a, y: c })),
    fc.tuple(safe, fc.constantFrom(0, 1)).map(([c, k]) => ({ kind: DIRECT_REPLY, x: c, y: k })),
  );

  it('read back what was written; rewritten in JSON (a held envelope leaving on another link) they are the same envelope', () => {
    const headers = new TrafficHeaders('here', 100);
    fc.assert(
      fc.property(
        traffic,
        fc.stringMatching(/^[A-Za-z0-9._:@+~-]{1,12}$/),
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        (t, node, payload) => {
          const head = directHeader(t.kind, t.x, t.y);
          expect(parseDirectHeader(head, head.length)).toBe(true);
          expect(directFields).toEqual({ x: t.x, y: t.y });
          const text = payload === undefined ? head : `${head}\t${payload}`;
          const json = headers.undirect(text, node);
          const tab = json.indexOf('\t');
          const h = EnvelopeHeader.parse(parseHeader(tab < 0 ? json : json.slice(0, tab)));
          const want =
            t.kind === DIRECT_SEND
              ? { t: 's', a: t.x }
              : t.kind === DIRECT_CALL
                ? { t: 'c', a: t.x, c: t.y }
                : { t: 'r', c: t.x, k: t.y };
          expect(h).toEqual({ ...want, n: node, o: 'here', h: 0 });
          expect(tab < 0 ? undefined : json.slice(tab + 1)).toBe(payload);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuse anything else after S, C or R', () => {
    for (const bad of [
      'S',
      'S0',
      'S01',
      'S-1',
      'S1,2',
      'S1 ',
      'S12345678901234567',
      'C1',
      'C1,',
      'C1,0',
      'C0,1',
      'C1,2,3',
      'R1,2',
      'R1,',
      'R,1',
      'R1,01',
      'X1',
      'S9007199254740993',
    ]) {
      expect(parseDirectHeader(bad, bad.length), bad).toBe(false);
    }
  });
});

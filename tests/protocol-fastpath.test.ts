// The hot-path header validator must accept exactly what the zod schemas accept for the traffic
// envelopes (s, c, r): never more (a hostile header slipping past validation), and for valid
// headers the same fields.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { EnvelopeHeader, fastHeader } from '../core/protocol.ts';

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
          for (const [k, v] of Object.entries(slow.data!)) expect((fast as Record<string, unknown>)[k]).toEqual(v);
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

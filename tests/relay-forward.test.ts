// A relay forwards a routed envelope with only its hop count rewritten (no JSON re-encoding):
// for every header parseHeader reads on its canonical path, the forwarded text must be exactly
// what serialising the header again would give. Then end to end: sends and calls through a relay.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { behaviour, createNode, type ActorRef } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { canonicalHop, envelope, nextHopText, parseHeader } from './helpers/envelope.ts';
import { z } from 'zod';

describe('nextHopText', () => {
  const id = fc.oneof(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.constantFrom('a"b', 'c\\d', 'é', 'node-1', ',"h":1'),
  );
  const int = fc.oneof(
    fc.integer({ min: 0, max: 2 ** 31 }),
    fc.constantFrom(2 ** 53 - 1, 10, 99, 100),
  );
  const hop = fc.integer({ min: 0, max: 254 });
  const payload = fc.oneof(
    fc.constant(undefined),
    fc.json(),
    fc.constantFrom('{"h":1,"n":"x"}', ',"h":3'),
  );
  const header = fc.oneof(
    fc.record({ t: fc.constant('s'), n: id, o: id, h: hop, a: int }),
    fc.record({ t: fc.constant('c'), n: id, o: id, h: hop, a: int, c: int }),
    fc.record({ t: fc.constant('r'), n: id, o: id, h: hop, c: int, k: fc.constantFrom(0, 1) }),
    fc.record({ t: fc.constantFrom('x', 'sp', 'm'), n: id, o: id, h: hop, a: int }),
  );

  it('gives exactly envelope({ ...header, h: h + 1 }, payload) for canonical headers; others are not marked', () => {
    let canonical = 0;
    fc.assert(
      fc.property(header, payload, (h, p) => {
        const text = envelope(h, p);
        const tab = text.indexOf('\t');
        const parsed = parseHeader(tab < 0 ? text : text.slice(0, tab)) as Record<string, unknown>;
        if (canonicalHop.at < 0) return;
        canonical++;
        expect(['s', 'c', 'r']).toContain(h.t);
        expect(nextHopText(text, canonicalHop.at, canonicalHop.end, parsed.h as number)).toBe(
          envelope({ ...parsed, h: (parsed.h as number) + 1 }, p),
        );
      }),
      { numRuns: 3000 },
    );
    expect(canonical).toBeGreaterThan(500);
  });
});

describe('through a relay', () => {
  it('sends and calls from a node linked only to a relay reach the target and come back', async () => {
    const a = createNode({ name: 'a', autoConnect: false });
    const relay = createNode({ name: 'relay' });
    const b = createNode({ name: 'b', autoConnect: false });
    try {
      await connectMemory(a, relay);
      await connectMemory(relay, b);
      const got: number[] = [];
      const echo = b.spawn(
        behaviour({
          schema: z.object({ n: z.number() }),
          handle(m, _s, ctx) {
            got.push(m.n);
            ctx.reply(m.n * 2);
          },
        }),
      );
      const ref = a.ref('b', echo.id) as ActorRef<{ n: number }, number>;
      for (let i = 0; i < 100; i++) expect(await ref.call({ n: i }, { timeout: 5000 })).toBe(i * 2);
      for (let i = 100; i < 1100; i++) ref.send({ n: i });
      for (let t = 0; t < 200 && got.length < 1100; t++)
        await new Promise((r) => setTimeout(r, 10));
      expect(got).toEqual(Array.from({ length: 1100 }, (_, i) => i));
      expect(a.linkStats().map((l) => l.node)).toEqual(['relay']);
    } finally {
      await Promise.all([a.shutdown(), relay.shutdown(), b.shutdown()]);
    }
  });
});

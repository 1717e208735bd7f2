// Short routed headers (docs/protocol.md, "Routed envelopes"): routed s/c/r envelopes on a link
// whose peer announced `rh: 1` carry `s<h>,<n>,<o>,<a>` (c, r alike) instead of JSON. Written,
// read back and turned into JSON they are the same envelope; a relay forwards them with only the
// hop digits rewritten, in JSON to a peer without `rh` (an older node), and refuses bad ones.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { z } from 'zod';
import { behaviour, createNode, type Node } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { EnvelopeReader } from '../core/envelope.ts';
import { longRouted } from '../core/envelope-write.ts';
import {
  DIRECT_CALL,
  DIRECT_SEND,
  DIRECT_REPLY,
  EnvelopeHeader,
  parseHeader,
  TrafficHeaders,
} from './helpers/envelope.ts';
import { rawPeer } from './helpers/raw-peer.ts';

const id = fc.stringMatching(/^[A-Za-z0-9._:@+~-]{1,16}$/);
const safe = fc.oneof(fc.integer({ min: 1, max: 2 ** 31 }), fc.constant(2 ** 53 - 1));
const traffic = fc.oneof(
  safe.map((a) => ({ kind: DIRECT_SEND, x: a, y: 0, want: { t: 's', a } })),
  fc.tuple(safe, safe).map(([a, c]) => ({ kind: DIRECT_CALL, x: a, y: c, want: { t: 'c', a, c } })),
  fc
    .tuple(safe, fc.constantFrom(0, 1))
    .map(([c, k]) => ({ kind: DIRECT_REPLY, x: c, y: k, want: { t: 'r', c, k } })),
);

describe('short routed headers', () => {
  it('read back what was written; in JSON they are the same envelope as the JSON writer gives', () => {
    const reader = new EnvelopeReader();
    fc.assert(
      fc.property(
        traffic,
        id,
        id,
        fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        (t, origin, node, payload) => {
          const headers = new TrafficHeaders(origin, 10);
          const head = headers.short(t.kind, node, t.x, t.y);
          const text = payload === undefined ? head : `${head}\t${payload}`;
          expect(reader.parseRouted(text, head.length)).toBe(true);
          expect({ ...reader.routed }).toEqual({ h: 0, n: node, o: origin, hopEnd: 2 });
          expect({ ...reader.direct }).toEqual({ x: t.x, y: t.y });
          const json = longRouted(reader, text)!;
          expect(json).toBe(
            headers.json(t.kind, node, t.x, t.y) + (payload === undefined ? '' : `\t${payload}`),
          );
          const tab = json.indexOf('\t');
          const h = EnvelopeHeader.parse(parseHeader(tab < 0 ? json : json.slice(0, tab)));
          expect(h).toEqual({ ...t.want, n: node, o: origin, h: 0 });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuse malformed ones', () => {
    const reader = new EnvelopeReader();
    for (const bad of [
      's',
      's0',
      's0,a,b',
      's0,a,b,',
      's,a,b,1',
      's00,a,b,1',
      's01,a,b,1',
      's256,a,b,1',
      's0,a,b,0',
      's0,a,b,01',
      's0,a,b,1x',
      's0,a,b,1,2',
      'c0,a,b,1',
      'c0,a,b,1,0',
      'c0,a,b,1,',
      'r0,a,b,1,2',
      'r0,a,b,0,1',
      's0,a,b,99999999999999999',
    ])
      expect(reader.parseRouted(bad, bad.length), bad).toBe(false);
  });
});

/** c (a real node) — mid (the relay) — raw peer `old` or `new` on a memory link. */
async function relayWithRaw(rh: boolean) {
  const c = createNode({ name: 'c', autoConnect: false });
  const mid = createNode({ name: 'mid' });
  const errors: string[] = [];
  mid.events.on('protocolError', (e) => errors.push(`${e.error.code} ${e.error.message}`));
  await connectMemory(c, mid);
  const { raw, attached } = rawPeer(mid, { id: rh ? 'new' : 'old' });
  await raw.handshake(rh ? { rh: 1 } : {});
  await attached;
  const got: unknown[] = [];
  const echo = c.spawn(
    behaviour({
      schema: z.object({ n: z.number() }),
      handle(m, _s, ctx) {
        got.push(m.n);
        ctx.reply(m.n * 2);
      },
    }),
  );
  return {
    c,
    mid,
    raw,
    echo,
    got,
    errors,
    stop: () => Promise.all([c.shutdown(), mid.shutdown()]),
  };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('through a relay', () => {
  it('a peer without rh (an older node) gets JSON, one hop further; its JSON reaches the node behind the relay', async () => {
    const t = await relayWithRaw(false);
    try {
      t.c.ref('old', 7).send({ n: 1 });
      const env = await t.raw.next((e) => e.includes('"a":7'), 'the send');
      expect(env).toBe('{"t":"s","n":"old","o":"c","h":1,"a":7}\tj{"n":1}');
      // Its JSON routed envelopes still go through, and the reply comes back to it in JSON.
      t.raw.sendTo(t.echo.id, { n: 5 }, 'c');
      expect(await t.raw.call(t.echo.id, { n: 21 }, 'c')).toEqual({ ok: true, value: 42 });
      await until(() => t.got.length === 2);
      expect(t.got).toEqual([5, 21]);
      expect(t.errors).toEqual([]);
    } finally {
      await t.stop();
    }
  });

  it('a peer with rh gets the short form with only the hop digits raised; bad ones are refused and the link stays up', async () => {
    const t = await relayWithRaw(true);
    try {
      t.c.ref('new', 7).send({ n: 1 });
      expect(await t.raw.next((e) => e.startsWith('s'), 'the send')).toBe('s1,new,c,7\tj{"n":1}');
      // Short routed from the raw peer reach c's actor; its call is answered in the short form.
      t.raw.send(`s0,c,new,${t.echo.id}\tj{"n":3}`);
      t.raw.send(`c0,c,new,${t.echo.id},9\tj{"n":4}`);
      expect(await t.raw.next((e) => e.startsWith('r'), 'the reply')).toBe('r1,new,c,9,1\tj8');
      await until(() => t.got.length === 2);
      expect(t.got).toEqual([3, 4]);
      // Malformed, a bad id, a forged origin, past the hop limit: refused, nothing delivered.
      t.raw.send(`s0,c,,${t.echo.id}\tj{"n":0}`);
      t.raw.send(`s0,c,new,0\tj{"n":0}`);
      t.raw.send(`s0,c,bad id,${t.echo.id}\tj{"n":0}`);
      t.raw.send(`s0,bad/id,new,${t.echo.id}\tj{"n":0}`);
      t.raw.send(`s0,mid,mid,1\tj{"n":0}`);
      t.raw.send(`s16,c,new,${t.echo.id}\tj{"n":0}`);
      await until(() => t.errors.length >= 6);
      expect(t.errors.map((e) => e.split(' ')[0])).toEqual([
        'PROTOCOL_ERROR',
        'PROTOCOL_ERROR',
        'PROTOCOL_ERROR',
        'PROTOCOL_ERROR',
        'PROTOCOL_ERROR',
        'HOP_LIMIT',
      ]);
      t.raw.send(`s0,c,new,${t.echo.id}\tj{"n":6}`);
      await until(() => t.got.length === 3);
      expect(t.got).toEqual([3, 4, 6]);
      expect(t.mid.peers().sort()).toEqual(['c', 'new']);
    } finally {
      await t.stop();
    }
  });

  it('three nodes over the memory transport: sends and calls through the relay, in order', async () => {
    const nodes: Node[] = [];
    try {
      const a = createNode({ name: 'a', autoConnect: false });
      const mid = createNode({ name: 'mid' });
      const b = createNode({ name: 'b', autoConnect: false });
      nodes.push(a, mid, b);
      await connectMemory(a, mid);
      await connectMemory(mid, b);
      const got: number[] = [];
      const echo = b.spawn(
        behaviour({
          schema: z.object({ n: z.number() }),
          handle(m, _s, ctx) {
            got.push(m.n);
            ctx.reply(-m.n);
          },
        }),
      );
      const ref = a.ref<{ n: number }, number>('b', echo.id);
      for (let i = 0; i < 500; i++) ref.send({ n: i });
      expect(await ref.call({ n: 500 }, { timeout: 5000 })).toBe(-500);
      await until(() => got.length === 501);
      expect(got).toEqual(Array.from({ length: 501 }, (_, i) => i));
    } finally {
      await Promise.all(nodes.map((n) => n.shutdown()));
    }
  });
});

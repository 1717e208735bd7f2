// Issue 6 — fuzzing a node's input through a hand-driven peer (tests/helpers/raw-peer.ts) on a
// memory link: random and mutated frames after authentication, random handshakes before it,
// spoofed origins and refs naming unknown nodes. The node never crashes (no uncaught exception or
// unhandled rejection), never delivers a frame from an unauthenticated peer, reports each
// malformed envelope as a `protocolError` and each undecodable payload as an `invalidMessage`
// (checked exactly against a reference classifier built from the protocol's zod schemas and a
// second codec), delivers exactly the valid messages, and keeps working after the barrage.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ActorRef,
  createManualClock,
  createNode,
  type Node,
  type NodeEvents,
} from '../core/index.ts';
import { Codec } from '../core/codec.ts';
import { EnvelopeHeader } from '../core/protocol.ts';
import { rawPeer, type RawPeer } from './helpers/raw-peer.ts';
import { settle, until, within } from './helpers/nodes.ts';
import { guardProcess, params } from './helpers/fuzz.ts';

guardProcess();

const MAX_DEPTH = 16;
const MAX_FRAME = 64 * 1024;

/** One node under attack, with an echo and a sink, on a manual clock (no timer ever fires). */
function target() {
  const n = createNode({
    name: 'target',
    clock: createManualClock(),
    maxDepth: MAX_DEPTH,
    maxFrameSize: MAX_FRAME,
  });
  const ev = {
    protocol: [] as NodeEvents['protocolError'][],
    invalid: [] as NodeEvents['invalidMessage'][],
    linkUp: [] as string[],
  };
  n.events.on('protocolError', (e) => ev.protocol.push(e));
  n.events.on('invalidMessage', (e) => ev.invalid.push(e));
  n.events.on('linkUp', (e) => ev.linkUp.push(e.node));
  const received: unknown[] = [];
  const sink = n.spawn(async (self) => {
    for (;;) received.push(await self.receive());
  });
  const echo = n.spawn(async (self) => {
    for (;;) self.reply(await self.receive());
  });
  return { n, ev, received, sink, echo };
}

/** A second codec with the node's limits: the reference for "this payload decodes". */
const host = { sendTo() {}, callTo: () => Promise.resolve(), exitTo() {} };
const refCodec = new Codec((node, id) => new ActorRef(host as never, node, id), {
  maxDepth: MAX_DEPTH,
});

// ---------------------------------------------------------------------------------------------
// Generators

const anyValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer({ min: -3, max: 2 ** 53 }),
  fc.double(),
  fc.constantFrom(
    0,
    1,
    -1,
    1.5,
    2 ** 53,
    256,
    '',
    null,
    true,
    false,
    [],
    {},
    'target',
    's',
    'c',
    'x',
  ),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const ENVELOPE_TYPES = [
  's',
  'c',
  'r',
  'x',
  'l',
  'u',
  'm',
  'dm',
  'd',
  'sp',
  'hb',
  'nd',
  'ga',
  'gd',
  'mb',
  'k',
  'hello',
  'auth',
  'ok',
  'zz',
] as const;

/** Payloads: valid JSON and superjson, garbage, prototype-pollution keys, deep nesting, refs to unknown nodes, large strings. */
const payload = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => `j${JSON.stringify(v)}`),
  fc
    .anything({ maxDepth: 3, withDate: true, withMap: true, withSet: true, withBigInt: true })
    .map((v) => {
      try {
        return refCodec.encode(v);
      } catch {
        return 'jnull';
      }
    }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom(
    'j{"__proto__":{"polluted":1}}',
    'j{"constructor":{"prototype":{"polluted":1}}}',
    's{"json":{},"meta":{"values":{"__proto__.polluted":["undefined"]}}}',
    'x{}',
    'j',
    's',
    '',
  ),
  fc
    .integer({ min: MAX_DEPTH - 2, max: MAX_DEPTH + 8 })
    .map((d) => `j${'['.repeat(d)}${']'.repeat(d)}`),
  fc
    .tuple(
      fc.string({ minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 2 ** 50 }),
      fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
    )
    .map(
      ([node, id, addrs]) =>
        `s${JSON.stringify({ json: { to: [node, id, addrs] }, meta: { values: { to: [['custom', 'troupe.ref']] } } })}`,
    ),
  fc.integer({ min: 1000, max: 20_000 }).map((len) => `j${JSON.stringify('ü'.repeat(len))}`),
);

/** Envelope headers of every type, with mostly well-formed fields, some aimed at our actors. */
function headers(ids: number[]) {
  const actor = fc.oneof(fc.constantFrom(...ids), fc.integer({ min: 1, max: 2 ** 40 }));
  const nodeId = fc.oneof(
    fc.constantFrom('target', 'raw', 'ghost', 'target '),
    fc.string({ minLength: 1, maxLength: 12 }),
  );
  return fc.record({
    t: fc.constantFrom(...ENVELOPE_TYPES),
    n: fc.oneof({ weight: 4, arbitrary: fc.constant('target') }, nodeId),
    o: nodeId,
    h: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) },
      fc.integer({ min: 0, max: 300 }),
    ),
    a: actor,
    c: fc.integer({ min: 1, max: 1000 }),
    k: fc.constantFrom(0, 1),
    f: actor,
    l: fc.constantFrom(0, 1),
    w: actor,
    m: fc.string({ minLength: 1, maxLength: 10 }),
    b: fc.string({ minLength: 1, maxLength: 10 }),
    lk: fc.constantFrom(0, 1),
    x: nodeId,
    g: fc.string({ minLength: 1, maxLength: 10 }),
  });
}

type Mutation =
  | { op: 'set'; field: string; value: unknown }
  | { op: 'delete'; field: string }
  | { op: 'cut'; at: number }
  | { op: 'insert'; at: number; text: string };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant('set' as const),
    field: fc.constantFrom(
      't',
      'n',
      'o',
      'h',
      'a',
      'c',
      'k',
      'm',
      'w',
      'x',
      'g',
      'extra',
      '__proto__',
    ),
    value: anyValue,
  }),
  fc.record({
    op: fc.constant('delete' as const),
    field: fc.constantFrom('t', 'n', 'o', 'h', 'a', 'c', 'k', 'm', 'w', 'x', 'g'),
  }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.constantFrom('\t', '\n', '"', '{', '}', ',', '\\', '\u0000', '😀'),
  }),
);

/** One envelope's text: a header (mutated or not) and maybe a payload. */
function envelopeText(ids: number[]) {
  return fc
    .tuple(
      headers(ids),
      fc.option(payload, { nil: undefined }),
      fc.array(mutation, { maxLength: 3 }),
    )
    .map(([h, p, muts]) => {
      const obj: Record<string, unknown> = { ...h };
      let text = '';
      for (const m of muts) if (m.op === 'set') obj[m.field] = m.value;
      for (const m of muts) if (m.op === 'delete') delete obj[m.field];
      text = JSON.stringify(obj) + (p === undefined ? '' : `\t${p}`);
      for (const m of muts) {
        if (m.op === 'cut') text = text.slice(0, m.at % (text.length + 1));
        if (m.op === 'insert') {
          const at = m.at % (text.length + 1);
          text = text.slice(0, at) + m.text + text.slice(at);
        }
      }
      return text;
    });
}

/** A direct traffic envelope (`S<a>`, `C<a>,<c>`, `R<c>,<k>`), well-formed or mutated. */
function directText(ids: number[]) {
  const num = fc.oneof(
    fc.constantFrom(...ids),
    fc.integer({ min: 0, max: 2 ** 54 }),
    fc.constantFrom(0, 1, 2),
  );
  const head = fc.oneof(
    num.map((a) => `S${a}`),
    fc.tuple(num, num).map(([a, c]) => `C${a},${c}`),
    fc.tuple(num, num).map(([c, k]) => `R${c},${k}`),
    fc
      .tuple(fc.constantFrom('S', 'C', 'R'), fc.string({ maxLength: 8 }))
      .map(([k, rest]) => k + rest),
  );
  return fc
    .tuple(
      head,
      fc.option(payload, { nil: undefined }),
      fc.option(fc.constantFrom('0', ' ', ',', '-1', '\u0000'), { nil: undefined }),
    )
    .map(([h, p, junk]) => (junk === undefined ? h : h + junk) + (p === undefined ? '' : `\t${p}`));
}

function frames(ids: number[]) {
  const envelopes = fc.oneof(
    { weight: 3, arbitrary: envelopeText(ids) },
    { weight: 1, arbitrary: directText(ids) },
  );
  return fc.oneof(
    {
      weight: 6,
      arbitrary: fc.array(envelopes, { minLength: 1, maxLength: 5 }).map((e) => e.join('\n')),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '\n',
        '\t',
        '\n\n\t\n',
        '[]',
        'null',
        '{}',
        '{"t":"hb"}',
        '{"t":"k","b":5}',
        '{"t":"s"}',
      ),
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The reference: what the node must do with each envelope.

type Expect =
  | { kind: 'protocol' }
  | { kind: 'invalid' }
  | { kind: 'deliver'; json?: unknown }
  | { kind: 'other' }
  | { kind: 'skip' };

function classify(text: string, node: string, sinkId: number, ours: number[]): Expect {
  const tab = text.indexOf('\t');
  const headText = tab < 0 ? text : text.slice(0, tab);
  const body = tab < 0 ? undefined : text.slice(tab + 1);
  const direct =
    /^(?:S([1-9][0-9]{0,15})|C([1-9][0-9]{0,15}),([1-9][0-9]{0,15})|R([1-9][0-9]{0,15}),([01]))$/.exec(
      headText,
    );
  if (/^[SCR]/.test(headText)) {
    // The direct form (docs/protocol.md): from the link's peer, for this node.
    if (
      !direct ||
      [direct[1], direct[2], direct[3], direct[4]].some(
        (v) => v !== undefined && !Number.isSafeInteger(Number(v)),
      )
    )
      return { kind: 'protocol' };
    if (direct[4] !== undefined) return { kind: 'other' }; // a reply nobody waits for
    return traffic(Number(direct[1] ?? direct[2]), body, sinkId, ours);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(headText);
  } catch {
    return { kind: 'protocol' };
  }
  const parsed = EnvelopeHeader.safeParse(raw);
  if (!parsed.success) return { kind: 'protocol' };
  const h = parsed.data;
  // Signals that would end our actors (an exit, a link whose partner "dies" later) are legal
  // for an authenticated peer; keep them out so the delivery count stays checkable.
  if ((h.t === 'x' || h.t === 'l') && ours.includes(h.a)) return { kind: 'skip' };
  if (h.t === 'nd') return { kind: 'skip' };
  if (!('n' in h) || h.n !== node) return { kind: 'other' };
  // Addressed to this node "from" this node: forged (a node never sends itself envelopes over a link).
  if (h.o === node) return { kind: 'protocol' };
  if (h.t === 'sp') {
    // A spawn request decodes its arguments before looking the behaviour up.
    if (body === undefined) return { kind: 'other' };
    try {
      refCodec.decode(body);
      return { kind: 'other' };
    } catch {
      return { kind: 'invalid' };
    }
  }
  if (h.t === 's' || h.t === 'c') return traffic(h.a, body, sinkId, ours);
  return { kind: 'other' };
}

/** A send or call to actor `a` of this node with payload `body`. */
function traffic(a: number, body: string | undefined, sinkId: number, ours: number[]): Expect {
  if (!ours.includes(a)) return { kind: 'other' };
  if (body === undefined)
    return a === sinkId ? { kind: 'deliver', json: undefined } : { kind: 'other' };
  try {
    refCodec.decode(body);
  } catch {
    return { kind: 'invalid' };
  }
  if (a !== sinkId) return { kind: 'other' };
  return { kind: 'deliver', json: body.startsWith('j') ? JSON.parse(body.slice(1)) : undefined };
}

async function authenticated(n: Node, id: string): Promise<RawPeer> {
  const { raw } = rawPeer(n, { id });
  await raw.handshake();
  await until(() => n.peers().includes(id), `the link to ${id} to come up`);
  return raw;
}

/** The node still answers a local call, and a call from a fresh, well-behaved peer. */
async function stillWorks(n: Node, echo: ActorRef): Promise<void> {
  expect(await within(n.call(echo, 'local ok'), 'a local call')).toBe('local ok');
  const fresh = await authenticated(n, `fresh-${Math.random().toString(36).slice(2, 8)}`);
  expect(await within(fresh.call(echo.id, 'remote ok'), 'a call from a fresh peer')).toEqual({
    ok: true,
    value: 'remote ok',
  });
}

describe('a node under fuzzed input', () => {
  it('random and mutated frames after authentication: exact events, exact deliveries, no crash, still working', async () => {
    const { n, ev, received, sink, echo } = target();
    let raw = await authenticated(n, 'raw');
    let reconnects = 0;
    let lastFrame = '';
    const ours = [sink.id, echo.id];
    await fc.assert(
      fc.asyncProperty(frames(ours), async (frame) => {
        expect(
          n.isAlive(sink) && n.isAlive(echo),
          `our actors alive after ${JSON.stringify(lastFrame).slice(0, 2000)}`,
        ).toBe(true);
        lastFrame = frame;
        const envs = frame.split('\n').filter((e) => e.length > 0);
        const expected = envs.map((e) => classify(e, n.id, sink.id, ours));
        const kept = envs.filter((_, i) => expected[i].kind !== 'skip');
        const exp = expected.filter((e) => e.kind !== 'skip');
        if (kept.length === 0) return;
        const text = kept.join('\n');
        const before = {
          protocol: ev.protocol.length,
          invalid: ev.invalid.length,
          received: received.length,
        };
        raw.send(text);
        await settle(1);
        if (text.startsWith('{"t":"reject"') || text.length > MAX_FRAME) {
          // A refusal from the peer (or an oversize frame) ends the link: start a new one.
          await raw.whenClosed();
          raw = await authenticated(n, `raw${++reconnects}`);
          return;
        }
        expect(raw.closed).toBe(false);
        const protocolErrors = ev.protocol
          .slice(before.protocol)
          .filter((p) => p.error.code === 'PROTOCOL_ERROR');
        expect(
          protocolErrors.length,
          `protocol errors for ${JSON.stringify(text).slice(0, 300)}`,
        ).toBe(exp.filter((e) => e.kind === 'protocol').length);
        expect(
          ev.invalid.length - before.invalid,
          `invalid messages for ${JSON.stringify(text).slice(0, 300)}`,
        ).toBe(exp.filter((e) => e.kind === 'invalid').length);
        const deliveries = exp.filter(
          (e): e is { kind: 'deliver'; json?: unknown } => e.kind === 'deliver',
        );
        expect(
          received.length - before.received,
          `deliveries for ${JSON.stringify(text).slice(0, 300)}`,
        ).toBe(deliveries.length);
        deliveries.forEach((d, i) => {
          if (d.json !== undefined) expect(received[before.received + i]).toEqual(d.json);
        });
        for (const p of ev.protocol.slice(before.protocol))
          expect(['PROTOCOL_ERROR', 'HOP_LIMIT']).toContain(p.error.code);
      }),
      params(0.25),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await stillWorks(n, echo);
    await n.shutdown();
  }, 120_000);

  it('random handshakes: nothing from an unauthenticated peer is ever delivered, every refusal is an event, the node keeps working', async () => {
    const { n, ev, received, sink, echo } = target();
    const step = fc.oneof(
      fc.constant({ kind: 'hello' as const }),
      fc.record({
        kind: fc.constant('hello-bad' as const),
        field: fc.constantFrom('v', 'node', 'inc', 'nonce', 'addrs', 't', 'fc'),
        value: anyValue,
      }),
      fc.constant({ kind: 'hello-self' as const }),
      fc.record({ kind: fc.constant('auth' as const), mac: fc.stringMatching(/^[0-9a-f]{64}$/) }),
      fc.record({ kind: fc.constant('auth-bad' as const), mac: anyValue }),
      fc.constant({ kind: 'ok' as const }),
      fc.record({
        kind: fc.constant('reject' as const),
        code: fc.constantFrom('UNAUTHORIZED', 'PROTOCOL_ERROR', 'NOPE', ''),
        message: fc.string({ maxLength: 30 }),
      }),
      fc.constant({ kind: 'envelope' as const }),
      fc.constant({ kind: 'ack' as const }),
      fc.record({
        kind: fc.constant('text' as const),
        text: fc.string({ unit: 'binary', maxLength: 100 }),
      }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        const id = `hs${run++}`;
        const { raw, attached } = rawPeer(n, { id });
        let settled = false;
        void attached.then(() => (settled = true));
        await raw.next(() => raw.nodeHello !== undefined, 'node hello');
        const before = { protocol: ev.protocol.length, received: received.length };
        for (const s of steps) {
          if (raw.closed) break;
          switch (s.kind) {
            case 'hello':
              raw.sendHello();
              break;
            case 'hello-bad':
              raw.sendHello({ [s.field]: s.value });
              break;
            case 'hello-self':
              raw.sendHello({ node: n.id });
              break;
            case 'auth':
              raw.sendJson({ t: 'auth', mac: s.mac });
              break;
            case 'auth-bad':
              raw.sendJson({ t: 'auth', mac: s.mac });
              break;
            case 'ok':
              raw.sendJson({ t: 'ok' });
              break;
            case 'reject':
              raw.sendJson({ t: 'reject', code: s.code, message: s.message });
              break;
            case 'envelope':
              raw.sendTo(sink.id, 'sneaky');
              break;
            case 'ack':
              raw.send('{"t":"k","b":1}');
              break;
            case 'text':
              raw.send(s.text);
              break;
          }
          await settle(1);
        }
        const closedByNode = raw.closed;
        expect(received.length).toBe(before.received);
        expect(ev.linkUp).not.toContain(id);
        expect(n.peers()).not.toContain(id);
        if (closedByNode) {
          expect(ev.protocol.length).toBeGreaterThan(before.protocol);
          expect(settled).toBe(true);
        }
        raw.conn.close();
        await settle(1);
      }),
      params(0.1),
    );
    await stillWorks(n, echo);
    expect(ev.linkUp.filter((id) => id.startsWith('hs'))).toEqual([]);
    await n.shutdown();
  }, 120_000);

  it("regression: a registry claim about the node's own actors is not applied (a forged add made a zombie name and sent NAME_LOST to our actor; a forged delete dropped a name we hold)", async () => {
    const { n, received, sink } = target();
    const raw = await authenticated(n, 'raw');
    expect(n.register('held', sink)).toBe(true);
    raw.sendJson({ t: 'ga', g: 'zombie', x: 'target', a: sink.id });
    raw.sendJson({ t: 'ga', g: 'held', x: 'target', a: sink.id + 1 }); // a lower... or any other ref of ours
    raw.sendJson({ t: 'gd', g: 'held', x: 'target', a: sink.id });
    await settle(2);
    expect(n.whereis('zombie')).toBeUndefined();
    expect(n.whereis('held')?.equals(sink)).toBe(true);
    expect(received).toEqual([]); // no NAME_LOST for a claim the node never made
    // The peer was corrected: a delete for the forged add, an add for the forged delete.
    expect(raw.inbox).toContain(JSON.stringify({ t: 'gd', g: 'zombie', x: 'target', a: sink.id }));
    expect(
      raw.inbox.filter((e) => e === JSON.stringify({ t: 'ga', g: 'held', x: 'target', a: sink.id }))
        .length,
    ).toBeGreaterThanOrEqual(1);
    await n.shutdown();
  });

  it("a registry flood stops at 100 000 names (each refused one is an event), and one peer at 50 000; the node's own actors can still register", async () => {
    const { n, ev, sink, echo } = target();
    // One peer may add at most MAX_NAMES_PER_PEER (50 000): two peers fill the registry.
    const flood = async (
      raw: Awaited<ReturnType<typeof authenticated>>,
      tag: string,
      count: number,
    ) => {
      let batch: string[] = [];
      for (let i = 0; i < count; i++) {
        // Names for the peer's own actors: names for nodes it does not route for are refused
        // outright (tests/security-registry.test.ts).
        batch.push(
          `{"t":"ga","g":"flood-${tag}-${i}","x":"raw${tag === 'a' ? 1 : 2}","a":${i + 1}}`,
        );
        if (batch.length === 900 || i === count - 1) {
          raw.send(batch.join('\n'));
          batch = [];
          await settle(1);
        }
      }
    };
    const LIMIT = 100_000;
    const PER_PEER = 50_000;
    await flood(await authenticated(n, 'raw1'), 'a', PER_PEER + 200);
    await until(
      () => n.registered().size + ev.protocol.length >= PER_PEER + 200,
      "the first peer's claims to be applied or refused",
      10_000,
    ).catch((e) => {
      throw new Error(
        `${(e as Error).message}: ${n.registered().size} names, ${ev.protocol.length} events: ${ev.protocol
          .slice(0, 2)
          .map((p) => p.error.message)
          .join('; ')}`,
      );
    });
    expect(n.registered().size).toBe(PER_PEER);
    expect(
      ev.protocol.filter((p) => p.error.message.includes('the most one peer may')),
    ).toHaveLength(200);
    await flood(await authenticated(n, 'raw2'), 'b', PER_PEER + 300);
    const COUNT = 2 * PER_PEER + 500;
    await until(
      () => n.registered().size + ev.protocol.length >= COUNT,
      'every claim to be applied or refused',
      10_000,
    );
    expect(n.registered().size).toBe(LIMIT);
    expect(ev.protocol.filter((p) => p.error.message.includes('registry full'))).toHaveLength(300);
    expect(n.register('mine', sink)).toBe(true);
    expect(n.whereis('mine')?.equals(sink)).toBe(true);
    await stillWorks(n, echo);
    await n.shutdown();
  }, 60_000);

  it("spoofed origins and refs naming unknown nodes cannot grow the node's tables without bound", async () => {
    const { n, ev, received, sink, echo } = target();
    const raw = await authenticated(n, 'raw');
    const COUNT = 12_000; // more than the node's route table holds (10 000)
    const batch: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      // A message claiming to come from a node that does not exist, carrying a ref to another.
      const ref = `s${JSON.stringify({ json: [`ghost-ref-${i}`, i + 1], meta: { values: [['custom', 'troupe.ref']] } })}`;
      batch.push(
        `${JSON.stringify({ t: 's', n: 'target', o: `spoof-${i}`, h: 0, a: sink.id })}\t${ref}`,
      );
      if (batch.length === 200) {
        raw.send(batch.splice(0).join('\n'));
        await settle(1);
      }
    }
    await until(() => received.length === COUNT, 'every spoofed message to reach the sink').catch(
      (e) => {
        throw new Error(
          `${(e as Error).message}: ${received.length} received; events ${JSON.stringify({ inv: ev.invalid.slice(0, 2).map((x) => x.error.message), pe: ev.protocol.slice(0, 2).map((x) => x.error.message) })}`,
        );
      },
    );
    const known = n.nodes().length;
    expect(known).toBeLessThanOrEqual(10_001);
    let reachableGhosts = 0;
    for (let i = 0; i < COUNT; i++) if (n.isReachable(`ghost-ref-${i}`)) reachableGhosts++;
    expect(known + reachableGhosts).toBeLessThanOrEqual(10_001);
    await stillWorks(n, echo);
    await n.shutdown();
  }, 60_000);
});

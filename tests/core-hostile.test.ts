import { describe, it, expect } from 'vitest';
import {
  createManualClock,
  TroupeError,
  type Node,
  type NodeEvents,
  type ActorRef,
} from '../core/index.ts';
import { createMemoryPair, connectMemory } from '../adapters/memory.ts';
import { useNodes, within, settle, rejects, until } from './helpers/nodes.ts';
import { rawPeer, type RawPeer } from './helpers/raw-peer.ts';

const echo = async (self: { receive(): Promise<unknown>; reply(v: unknown): boolean }) => {
  for (;;) self.reply(await self.receive());
};

type Ev<K extends keyof NodeEvents> = NodeEvents[K];

/** Record a node's error-ish events. */
function record(n: Node) {
  const ev = {
    protocol: [] as Ev<'protocolError'>[],
    invalid: [] as Ev<'invalidMessage'>[],
    dead: [] as Ev<'deadLetter'>[],
    linkUp: [] as Ev<'linkUp'>[],
  };
  n.events.on('protocolError', (e) => ev.protocol.push(e));
  n.events.on('invalidMessage', (e) => ev.invalid.push(e));
  n.events.on('deadLetter', (e) => ev.dead.push(e));
  n.events.on('linkUp', (e) => ev.linkUp.push(e));
  return ev;
}

/** A node on a manual clock (no heartbeat fires unless a test advances it) with an echo actor and a sink. */
function setup(make: (o?: object) => Node, options: object = {}) {
  const n = make({ name: 'target', clock: createManualClock(), ...options });
  const ev = record(n);
  const e = n.spawn(echo);
  const received: unknown[] = [];
  const sink = n.spawn(async (self) => {
    for (;;) received.push(await self.receive());
  });
  return { n, ev, echo: e, sink, received };
}

/** The node still works: a local call, and (if given) a call from the raw peer over its link. */
async function stillWorks(n: Node, echoRef: ActorRef, raw?: RawPeer): Promise<void> {
  expect(await within(echoRef.call('local ok'), 'local call')).toBe('local ok');
  if (raw)
    expect(await within(raw.call(echoRef.id, 'remote ok'), 'call from the raw peer')).toEqual({
      ok: true,
      value: 'remote ok',
    });
  expect(n.isShutdown).toBe(false);
}

describe('hostile input on a memory link', () => {
  const make = useNodes() as (o?: object) => Node;

  it('the raw peer helper completes a correct handshake and can call (sanity check)', async () => {
    const { n, echo: e, ev } = setup(make);
    const { raw, attached } = rawPeer(n);
    await raw.handshake();
    expect(await within(attached, 'attach')).toEqual({ ok: true, peer: 'raw' });
    expect(n.peers()).toEqual(['raw']);
    expect(ev.linkUp.map((x) => x.node)).toEqual(['raw']);
    await stillWorks(n, e, raw);
  });

  it('a malformed frame: protocolError event, nothing delivered, the link and node keep working', async () => {
    const { n, echo: e, ev, received } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.send('this is {not json');
    raw.send('{"t":"s","n":"target"'); // truncated
    raw.send('\t\t\n\n'); // separators only
    await settle(2);
    expect(ev.protocol.length).toBeGreaterThanOrEqual(2);
    for (const p of ev.protocol) {
      expect(p.error).toBeInstanceOf(TroupeError);
      expect(p.error.code).toBe('PROTOCOL_ERROR');
      expect(p.peer).toBe('raw');
    }
    expect(received).toEqual([]);
    expect(raw.closed).toBe(false);
    await stillWorks(n, e, raw);
  });

  it('an unknown envelope type: a PROTOCOL_ERROR event naming it, and the node keeps working', async () => {
    const { n, echo: e, ev, received } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.sendJson({ t: 'zz', n: 'target', o: 'raw', h: 0, a: 1 });
    raw.sendJson({ t: 's', n: 'target', o: 'raw', h: 0, a: -5 }); // known type, invalid field
    raw.send('[1,2,3]');
    await settle(2);
    expect(ev.protocol.map((p) => p.error.code)).toEqual([
      'PROTOCOL_ERROR',
      'PROTOCOL_ERROR',
      'PROTOCOL_ERROR',
    ]);
    expect(ev.protocol[0].error.message).toContain('zz');
    expect(received).toEqual([]);
    await stillWorks(n, e, raw);
  });

  it('a valid-shape envelope before the handshake: nothing delivered, UNAUTHORIZED, link closed', async () => {
    const { n, echo: e, ev, sink, received } = setup(make);
    const { raw, attached } = rawPeer(n);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendTo(sink.id, 'sneaky'); // well-formed, but before hello/auth
    const result = await within(attached, 'attach ends');
    expect(result.ok).toBe(false);
    expect((result as { error: TroupeError }).error.code).toBe('UNAUTHORIZED');
    await raw.whenClosed();
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['UNAUTHORIZED']);
    // The peer was told why before the close.
    expect(raw.inbox.some((x) => x.includes('"t":"reject"') && x.includes('UNAUTHORIZED'))).toBe(
      true,
    );
    await settle(2);
    expect(received).toEqual([]);
    expect(n.peers()).toEqual([]);
    await stillWorks(n, e);
  });

  it('a valid-shape envelope after hello but before auth: nothing delivered, UNAUTHORIZED, link closed', async () => {
    const { n, echo: e, ev, sink, received } = setup(make);
    const { raw, attached } = rawPeer(n);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello();
    await raw.nextControl('auth'); // the node proved itself; we have not
    raw.sendTo(sink.id, 'sneaky');
    const result = await within(attached, 'attach ends');
    expect((result as { error: TroupeError }).error.code).toBe('UNAUTHORIZED');
    await raw.whenClosed();
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['UNAUTHORIZED']);
    await settle(2);
    expect(received).toEqual([]);
    await stillWorks(n, e);
  });

  it('a wrong secret from a raw peer: UNAUTHORIZED, and its frames after that are never delivered', async () => {
    const { n, echo: e, ev, sink, received } = setup(make);
    const { raw, attached } = rawPeer(n, { secret: 'not the secret' });
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello();
    await raw.nextControl('auth');
    raw.sendJson({ t: 'auth', mac: raw.proof('dialer') });
    raw.sendJson({ t: 'ok' });
    raw.sendTo(sink.id, 'after a failed auth');
    expect(((await within(attached, 'attach ends')) as { error: TroupeError }).error.code).toBe(
      'UNAUTHORIZED',
    );
    await raw.whenClosed();
    await settle(2);
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['UNAUTHORIZED']);
    expect(received).toEqual([]);
    expect(n.peers()).toEqual([]);
    await stillWorks(n, e);
  });

  it('a wrong secret between two nodes: both sides report UNAUTHORIZED and no link comes up', async () => {
    const clock = createManualClock();
    const a = make({ name: 'a', secret: 'alpha', clock });
    const b = make({ name: 'b', secret: 'beta', clock });
    const evA = record(a);
    const evB = record(b);
    const [ea, eb] = createMemoryPair();
    const results = await within(
      Promise.allSettled([a.attach(ea, true), b.attach(eb, false)]),
      'both attaches end',
    );
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(((r as PromiseRejectedResult).reason as TroupeError).code).toBe('UNAUTHORIZED');
    }
    expect(evA.protocol.map((p) => p.error.code)).toContain('UNAUTHORIZED');
    expect(evB.protocol.map((p) => p.error.code)).toContain('UNAUTHORIZED');
    expect([...evA.protocol, ...evB.protocol].every((p) => p.error.code === 'UNAUTHORIZED')).toBe(
      true,
    );
    expect([evA.linkUp, evB.linkUp]).toEqual([[], []]);
    expect([a.peers(), b.peers()]).toEqual([[], []]);
  });

  it('the secret never crosses the wire', async () => {
    const secret = 'correct horse battery staple';
    const a = make({ name: 'a', secret });
    const b = make({ name: 'b', secret });
    const [ea, eb] = createMemoryPair({ record: true });
    await Promise.all([a.attach(ea, true), b.attach(eb, false)]);
    const everything = [...ea.sent, ...eb.sent].join('\n');
    expect(everything).toContain('"t":"auth"');
    expect(everything).not.toContain(secret);
  });

  it('a wrong protocol version: VERSION_MISMATCH on the node, the peer is told, link closed', async () => {
    const { n, echo: e, ev } = setup(make);
    const { raw, attached } = rawPeer(n);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello({ v: 99 });
    const result = await within(attached, 'attach ends');
    expect((result as { error: TroupeError }).error.code).toBe('VERSION_MISMATCH');
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['VERSION_MISMATCH']);
    const reject = await raw.nextControl<{ code: string }>('reject');
    expect(reject.code).toBe('VERSION_MISMATCH');
    await raw.whenClosed();
    await stillWorks(n, e);
  });

  it("regression: attach() rejected with TRANSPORT_CLOSED instead of the handshake's code (UNAUTHORIZED, VERSION_MISMATCH)", async () => {
    // Link reports `handshake failed: CODE: …`; the node parsed only a leading `CODE:`.
    const clock = createManualClock();
    const a = make({ name: 'a', secret: 'one', clock });
    const b = make({ name: 'b', secret: 'two', clock });
    const [ea, eb] = createMemoryPair();
    const [ra] = await Promise.allSettled([a.attach(ea, true), b.attach(eb, false)]);
    expect(((ra as PromiseRejectedResult).reason as TroupeError).code).toBe('UNAUTHORIZED');
    const { raw, attached } = rawPeer(a);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello({ v: 0 });
    expect(((await within(attached, 'attach ends')) as { error: TroupeError }).error.code).toBe(
      'VERSION_MISMATCH',
    );
  });

  it('a peer that never finishes the handshake is dropped after handshakeTimeout', async () => {
    const clock = createManualClock();
    const n = make({ name: 'target', clock, handshakeTimeout: 1000 });
    const ev = record(n);
    const { raw, attached } = rawPeer(n);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello(); // then silence
    await settle(1);
    clock.advance(999);
    await settle(1);
    expect(raw.closed).toBe(false);
    clock.advance(1);
    await raw.whenClosed();
    expect(((await within(attached, 'attach ends')) as { error: TroupeError }).error.code).toBe(
      'PROTOCOL_ERROR',
    );
    expect(ev.protocol[0].error.message).toContain('handshake timed out');
  });

  it('a ref to an unknown node: send is a dead letter, call rejects NODE_DOWN at once', async () => {
    const { n, ev } = setup(make);
    const ghost = n.ref('ghost-node', 1);
    ghost.send('hello?');
    expect(ev.dead).toEqual([
      expect.objectContaining({ to: 'ghost-node/1', reason: 'unreachable' }),
    ]);
    await rejects(ghost.call('hello?'), 'NODE_DOWN', 'call to a ref of an unknown node');
  });

  it('a hostile ref to an unknown node, received through a relay: send is a dead letter at the relay, call rejects NODE_DOWN promptly', async () => {
    const clock = createManualClock();
    const a = make({ name: 'a', clock });
    const relay = make({ name: 'relay', clock });
    const evRelay = record(relay);
    await connectMemory(a, relay);
    const { raw } = rawPeer(relay);
    await raw.handshake();
    // The raw peer (attached to the relay) sends A's actor a message with a ref to a node that does not exist.
    const onA = a.spawn(async (self) => {
      const { ghost } = (await self.receive()) as { ghost: ActorRef };
      ghost.send('are you there?');
      try {
        await ghost.call('are you there?');
        return 'resolved';
      } catch (err) {
        return (err as TroupeError).code;
      }
    });
    await settle(1);
    const payload = `s${JSON.stringify({ json: { ghost: ['ghost-node', 7] }, meta: { values: { ghost: [['custom', 'troupe.ref']] } } })}`;
    raw.send(`${raw.header('s', onA.id, {}, 'a')}\t${payload}`);
    const down = await within(
      a.waitDown(onA),
      "A's actor ends (its call settled without the clock moving)",
    );
    expect(down.result).toBe('NODE_DOWN');
    expect(evRelay.dead).toEqual([
      expect.objectContaining({ to: 'ghost-node/7', reason: 'unreachable' }),
    ]);
  });

  it('a ref to an unknown actor of a known node: send is a dead letter there, call rejects NO_ACTOR promptly', async () => {
    const { n, ev, echo: e } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.sendTo(424_242, 'nobody home');
    const r = await raw.callRaw(424_242, 'j"nobody home"');
    expect(r.ok).toBe(false);
    expect(JSON.parse(r.payload.slice(1))).toMatchObject({ code: 'NO_ACTOR' });
    expect(ev.dead).toEqual([expect.objectContaining({ to: 'target/424242', reason: 'no-actor' })]);
    await stillWorks(n, e, raw);
  });

  it('malformed payloads: an INVALID_MESSAGE event, an error reply to a call, nothing delivered', async () => {
    const { n, ev, echo: e, sink, received } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    const bad = [
      'jnot json',
      'x{"unknown":"codec"}',
      'j{"__proto__":{"polluted":true}}',
      's{"json":{"r":["",0]},"meta":{"values":{"r":[["custom","troupe.ref"]]}}}', // malformed ref
    ];
    for (const p of bad) raw.send(`${raw.header('s', sink.id)}\t${p}`);
    for (const p of bad) {
      const r = await raw.callRaw(e.id, p);
      expect(r.ok, p).toBe(false);
      expect(JSON.parse(r.payload.slice(1)), p).toMatchObject({ code: 'INVALID_MESSAGE' });
    }
    expect(ev.invalid).toHaveLength(bad.length * 2);
    expect(ev.invalid.every((x) => x.error.code === 'INVALID_MESSAGE')).toBe(true);
    expect(received).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await stillWorks(n, e, raw);
  });

  it('a message nested deeper than maxDepth: INVALID_MESSAGE to the caller, an event, the node keeps working', async () => {
    const { n, ev, echo: e, sink, received } = setup(make, { maxDepth: 32 });
    const { raw } = rawPeer(n);
    await raw.handshake();
    const deep = `j${'['.repeat(40)}${']'.repeat(40)}`;
    raw.send(`${raw.header('s', sink.id)}\t${deep}`);
    const r = await raw.callRaw(e.id, deep);
    expect(r.ok).toBe(false);
    expect(JSON.parse(r.payload.slice(1))).toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(ev.invalid.map((x) => x.error.code)).toEqual(['INVALID_MESSAGE', 'INVALID_MESSAGE']);
    expect(received).toEqual([]);
    // Just under the limit is fine.
    const ok = await raw.callRaw(e.id, `j${'['.repeat(20)}${']'.repeat(20)}`);
    expect(ok.ok).toBe(true);
    await stillWorks(n, e, raw);
  });

  it('sending a message nested deeper than maxDepth: call rejects INVALID_MESSAGE, send is a dead letter', async () => {
    const clock = createManualClock();
    const a = make({ name: 'a', clock, maxDepth: 16 });
    const b = make({ name: 'b', clock });
    const evA = record(a);
    await connectMemory(a, b);
    const target = b.spawn(echo);
    const remote = a.ref(target.node, target.id);
    let deep: unknown = 'bottom';
    for (let i = 0; i < 50; i++) deep = { d: deep };
    await rejects(remote.call(deep), 'INVALID_MESSAGE', 'call with a too-deep message');
    remote.send(deep);
    expect(evA.dead).toEqual([
      expect.objectContaining({ to: remote.key, reason: 'not-serializable' }),
    ]);
    expect(evA.dead[0].error?.code).toBe('INVALID_MESSAGE');
    // A cyclic message is caught by the same limit.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await rejects(remote.call(cyclic), 'INVALID_MESSAGE', 'call with a cyclic message');
    expect(await remote.call('fine')).toBe('fine');
  });

  it('a frame larger than maxFrameSize: FRAME_TOO_LARGE event, the peer is told and dropped, the node keeps working', async () => {
    const { n, ev, echo: e, sink, received } = setup(make, { maxFrameSize: 64 * 1024 });
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.sendTo(sink.id, 'x'.repeat(100 * 1024));
    await raw.whenClosed();
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['FRAME_TOO_LARGE']);
    expect(raw.inbox.some((x) => x.includes('"t":"reject"') && x.includes('FRAME_TOO_LARGE'))).toBe(
      true,
    );
    await settle(1);
    expect(received).toEqual([]);
    expect(n.peers()).toEqual([]);
    // The node still works locally and accepts a new, well-behaved peer.
    const { raw: again } = rawPeer(n, { id: 'raw2' });
    await again.handshake();
    await stillWorks(n, e, again);
  });

  it('sending a message larger than maxFrameSize: call rejects FRAME_TOO_LARGE, send is a dead letter, the link stays up', async () => {
    const clock = createManualClock();
    const a = make({ name: 'a', clock, maxFrameSize: 64 * 1024 });
    const b = make({ name: 'b', clock, maxFrameSize: 64 * 1024 });
    const evA = record(a);
    await connectMemory(a, b);
    const target = b.spawn(echo);
    const remote = a.ref(target.node, target.id);
    const huge = 'x'.repeat(100 * 1024);
    await rejects(remote.call(huge), 'FRAME_TOO_LARGE', 'call with a huge message');
    remote.send(huge);
    expect(evA.dead).toEqual([
      expect.objectContaining({ to: remote.key, reason: 'frame-too-large' }),
    ]);
    expect(evA.dead[0].error?.code).toBe('FRAME_TOO_LARGE');
    expect(a.peers()).toEqual(['b']);
    expect(await remote.call('small')).toBe('small');
  });

  it('a reply for a call nobody made is a dead letter, not a crash', async () => {
    const { n, ev, echo: e } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.send(
      `${JSON.stringify({ t: 'r', n: 'target', o: 'raw', h: 0, c: 123456, k: 1 })}\tj"surprise"`,
    );
    await settle(2);
    expect(ev.dead).toEqual([expect.objectContaining({ reason: 'late-reply' })]);
    await stillWorks(n, e, raw);
  });

  it('an envelope past the hop limit is dropped with HOP_LIMIT, and a call through it is rejected', async () => {
    const { n, ev, echo: e } = setup(make, { hopLimit: 4 });
    const { raw } = rawPeer(n);
    await raw.handshake();
    raw.send(`${JSON.stringify({ t: 'c', n: 'elsewhere', o: 'raw', h: 4, a: 1, c: 99 })}\tj"loop"`);
    const reply = await raw.next((x) => x.startsWith('{"t":"r"'), 'error reply');
    expect(reply).toContain('HOP_LIMIT');
    expect(ev.protocol.map((p) => p.error.code)).toEqual(['HOP_LIMIT']);
    await stillWorks(n, e, raw);
  });

  it('a flood of bad envelopes in one frame does not stop the good ones after it', async () => {
    const { n, ev, sink, received } = setup(make);
    const { raw } = rawPeer(n);
    await raw.handshake();
    const envs = [];
    for (let i = 0; i < 100; i++) envs.push(i % 2 ? '{oops' : `${raw.header('s', sink.id)}\tj${i}`);
    raw.send(envs.join('\n'));
    await until(() => received.length === 50, 'the 50 good envelopes arrive');
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => 2 * i));
    expect(ev.protocol).toHaveLength(50);
  });
});

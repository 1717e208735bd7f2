// Issue 11, item 1 — the handshake cannot be forged without the cluster secret.
//
// Attacker: no secret, any number of TCP connections to a real node on 127.0.0.1. The node's
// own proofs are the only valid MACs the attacker ever sees, so every attack is some way of
// getting the node to accept one of its own proofs: on another connection, in another role,
// under other ids (docs/security.md, "Handshake"). Each test here links nothing.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, TroupeError, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { RawTcpClient } from './helpers/cluster.ts';
import { rawPeer } from './helpers/raw-peer.ts';

const SECRET = 'security-handshake-secret';
const nodes: Node[] = [];
const raws: RawTcpClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
});

/** A real node listening on TCP, with a record of the links that came up and the refusals. */
async function target(
  name = 'target',
): Promise<{ node: Node; address: string; ups: string[]; refusals: TroupeError[] }> {
  const node = createNode({
    name,
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    autoConnect: false,
    handshakeTimeout: 3000,
  });
  nodes.push(node);
  const [address] = await node.listen();
  const ups: string[] = [];
  const refusals: TroupeError[] = [];
  node.events.on('linkUp', (e) => ups.push(e.node));
  node.events.on('protocolError', (e) => refusals.push(e.error));
  return { node, address: address.replace('tcp://', ''), ups, refusals };
}

async function dial(address: string): Promise<RawTcpClient> {
  const r = await RawTcpClient.connect(address);
  raws.push(r);
  return r;
}

const isAuth = (f: string): boolean => f.startsWith('{"t":"auth"');
const macOf = (f: string): string => (JSON.parse(f) as { mac: string }).mac;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('handshake: no link without the secret', () => {
  it('the two-connection reflection of issue 11 (ids holding "|" to shift the MAC text) links nothing', async () => {
    const t = await target('n1');
    const [c1, c2] = await Promise.all([dial(t.address), dial(t.address)]);
    const [h1, h2] = await Promise.all([c1.nodeHello(), c2.nodeHello()]);
    const N = h1.node;
    // The protocol-2 MAC text was `troupe/2|challenge|ownNonce|prover|verifier`. On c1 the node
    // proves `…|A1|N1|N|a|N` for a peer "a|N" whose nonce A1 is the node's c2 nonce; on c2 it
    // expects `…|N2|A2|N|a|N` from a peer "N|a" whose nonce A2 is the node's c1 nonce: equal.
    c1.sendFrames(c1.hello(`a|${N}`, { nonce: h2.nonce }));
    const stolen = await c1
      .nextFrame(isAuth, "the node's proof on c1", 2000)
      .then(macOf, () => undefined);
    c2.sendFrames(
      c2.hello(`${N}|a`, { nonce: h1.nonce }),
      JSON.stringify({ t: 'auth', mac: stolen ?? '0'.repeat(64) }),
      JSON.stringify({ t: 'ok' }),
    );
    await Promise.all([c1.closed, c2.closed]);
    expect(c2.frames).not.toContain('{"t":"ok"}');
    expect(t.ups).toEqual([]);
    expect(t.node.peers()).toEqual([]);
    // Such ids are malformed now: a protocol error, refused before any proof is computed.
    expect(stolen).toBeUndefined();
    expect(t.refusals.map((e) => e.code)).toEqual(['PROTOCOL_ERROR', 'PROTOCOL_ERROR']);
    expect(t.refusals[0].message).toMatch(/malformed hello/);
  });

  it('reflection with valid ids: a proof the node made on one connection is refused on another, under any ids and nonces the attacker picks', async () => {
    const t = await target();
    // For each attempt: c1 gets a proof from the node, c2 presents it. The attacker may choose
    // its claimed ids and nonces freely, including the node's own nonces on either connection.
    const attempts: { id1: string; id2: string; nonce1: 'n2' | 'own'; nonce2: 'n1' | 'own' }[] = [
      { id1: 'x', id2: 'x', nonce1: 'n2', nonce2: 'n1' },
      { id1: 'x', id2: 'y', nonce1: 'n2', nonce2: 'n1' },
      { id1: 'x', id2: 'x', nonce1: 'own', nonce2: 'own' },
      { id1: 'target-2', id2: 'x', nonce1: 'n2', nonce2: 'own' },
    ];
    for (const a of attempts) {
      const [c1, c2] = await Promise.all([dial(t.address), dial(t.address)]);
      const [h1, h2] = await Promise.all([c1.nodeHello(), c2.nodeHello()]);
      c1.sendFrames(c1.hello(a.id1, a.nonce1 === 'n2' ? { nonce: h2.nonce } : {}));
      const stolen = macOf(await c1.nextFrame(isAuth, "the node's proof on c1"));
      c2.sendFrames(
        c2.hello(a.id2, a.nonce2 === 'n1' ? { nonce: h1.nonce } : {}),
        JSON.stringify({ t: 'auth', mac: stolen }),
        JSON.stringify({ t: 'ok' }),
      );
      await c2.closed;
      expect(c2.frames).not.toContain('{"t":"ok"}');
      // …and back on c1 (the proof for the listener's role is never accepted as the dialer's).
      c1.sendFrames(JSON.stringify({ t: 'auth', mac: stolen }), JSON.stringify({ t: 'ok' }));
      await c1.closed;
      expect(c1.frames).not.toContain('{"t":"ok"}');
    }
    expect(t.ups).toEqual([]);
    expect(t.refusals.map((e) => e.code)).toEqual(Array(attempts.length * 2).fill('UNAUTHORIZED'));
  });

  it('a hello that breaks its schema (a 10,000-character id) is a PROTOCOL_ERROR, not UNAUTHORIZED', async () => {
    const t = await target();
    const c = await dial(t.address);
    await c.nodeHello();
    c.sendFrames(c.hello('x'.repeat(10_000)));
    await c.closed;
    const reject = JSON.parse(c.frames.find((f) => f.startsWith('{"t":"reject"'))!) as {
      code: string;
      message: string;
    };
    expect(reject.code).toBe('PROTOCOL_ERROR');
    expect(reject.message).toMatch(
      /malformed hello message: node: a node id is 1 to 128 characters/,
    );
    expect(t.refusals.map((e) => e.code)).toEqual(['PROTOCOL_ERROR']);
    expect(() => createNode({ name: 'bad|id' })).toThrow(/PROTOCOL_ERROR|invalid node id/);
    expect(() => t.node.ref('a|b', 1)).toThrow(/invalid node id/);
  });

  it('property: random interleavings of hellos, proofs and oks over 2–3 concurrent connections, without the secret, never bring a link up', async () => {
    const t = await target('victim');
    const N = 'victim';
    // Everything an attacker can say: hellos under ids built to collide with the node's id
    // (valid or not), with its own nonce or one the node used on any connection; proofs copied
    // from what the node sent on any connection, or made up; oks; each to any connection.
    const id = fc.constantFrom(
      'x',
      'y',
      N,
      `a|${N}`,
      `${N}|a`,
      `${N}|${N}`,
      `${N}a`,
      'victim ',
      'x'.repeat(200),
    );
    const step = fc.oneof(
      fc.record({
        k: fc.constant('hello' as const),
        on: fc.nat(2),
        id,
        nonceFrom: fc.integer({ min: -1, max: 2 }),
        role: fc.constantFrom('d', 'l', undefined),
      }),
      fc.record({
        k: fc.constant('auth' as const),
        on: fc.nat(2),
        from: fc.integer({ min: -1, max: 2 }),
      }),
      fc.record({ k: fc.constant('ok' as const), on: fc.nat(2) }),
      fc.record({ k: fc.constant('wait' as const) }),
    );
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }),
        fc.array(step, { minLength: 2, maxLength: 12 }),
        async (count, steps) => {
          runs++;
          const conns = await Promise.all(Array.from({ length: count }, () => dial(t.address)));
          const hellos = await Promise.all(conns.map((c) => c.nodeHello()));
          for (const s of steps) {
            if (s.k === 'wait') {
              await sleep(5);
              continue;
            }
            const c = conns[s.on % count];
            if (c.isClosed) continue;
            if (s.k === 'hello') {
              const nonce = s.nonceFrom < 0 ? c.nonce : hellos[s.nonceFrom % count].nonce;
              c.sendFrames(c.hello(s.id, { nonce, ...(s.role ? { r: s.role } : {}) }));
            } else if (s.k === 'auth') {
              // A proof the node sent on some connection so far (or a made-up one).
              const src = s.from < 0 ? undefined : conns[s.from % count].frames.find(isAuth);
              c.sendFrames(JSON.stringify({ t: 'auth', mac: src ? macOf(src) : 'ab'.repeat(32) }));
            } else c.sendFrames(JSON.stringify({ t: 'ok' }));
          }
          await sleep(20);
          for (const c of conns) c.close();
          expect(t.ups).toEqual([]);
          expect(t.node.peers()).toEqual([]);
          for (const c of conns) expect(c.frames).not.toContain('{"t":"ok"}');
        },
      ),
      { numRuns: 60 },
    );
    expect(runs).toBe(60);
    // The node still serves an honest peer with the secret.
    const honest = await dial(t.address);
    expect(await honest.handshake('honest', SECRET)).toBe(N);
    await expect.poll(() => t.ups).toEqual(['honest']);
  }, 60_000);
});

describe('handshake ordering (the "auth out of order" race)', () => {
  it("a peer's proof that arrives before its hello is held and checked, not refused", async () => {
    const n = createNode({ name: 'orderly', secret: SECRET });
    nodes.push(n);
    const { raw, attached } = rawPeer(n, { id: 'early', secret: SECRET });
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    // The proof needs only the node's hello; the peer's own hello follows it.
    raw.sendJson({ t: 'auth', mac: raw.proof('dialer') });
    raw.sendHello();
    const auth = await raw.nextControl<{ mac: string }>('auth');
    expect(auth.mac).toBe(raw.proof('listener'));
    await raw.nextControl('ok');
    raw.sendJson({ t: 'ok' });
    expect(await attached).toEqual({ ok: true, peer: 'early' });
  });

  it('…but a wrong early proof is still refused (UNAUTHORIZED) once the hello is in, and a repeated message is a protocol error', async () => {
    const n = createNode({ name: 'orderly2', secret: SECRET });
    nodes.push(n);
    const a = rawPeer(n, { id: 'early', secret: 'wrong' });
    await a.raw.next(() => a.raw.nodeHello !== undefined, 'node hello');
    a.raw.sendJson({ t: 'auth', mac: a.raw.proof('dialer') });
    a.raw.sendHello();
    const ra = await a.attached;
    expect(ra.ok === false && (ra.error as TroupeError).code).toBe('UNAUTHORIZED');

    const b = rawPeer(n, { id: 'twice', secret: SECRET });
    await b.raw.next(() => b.raw.nodeHello !== undefined, 'node hello');
    b.raw.sendJson({ t: 'auth', mac: b.raw.proof('dialer') });
    b.raw.sendJson({ t: 'auth', mac: b.raw.proof('dialer') });
    const rb = await b.attached;
    expect(rb.ok === false && (rb.error as TroupeError).code).toBe('PROTOCOL_ERROR');
    expect(rb.ok === false && (rb.error as TroupeError).message).toMatch(/second auth/);
  });

  it('two ends that both claim to listen are told so (PROTOCOL_ERROR), not UNAUTHORIZED', async () => {
    const n = createNode({ name: 'roles', secret: SECRET });
    nodes.push(n);
    const { raw, attached } = rawPeer(n, { id: 'also-listener', secret: SECRET });
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    raw.sendHello({ r: 'l' });
    const r = await attached;
    expect(r.ok === false && (r.error as TroupeError).message).toMatch(
      /both ends of the connection are listeners/,
    );
  });
});

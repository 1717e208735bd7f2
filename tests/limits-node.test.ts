// Issue 6 — limits, each configurable with a safe default: mailbox length (overflow policy for
// sends and calls, local and remote; system messages always get through), pending calls per
// node, the flow-control window and link queue (a peer that never acknowledges), connections and
// unauthenticated connections per node, and error stacks that cross the wire only when
// `exposeStacks` is on. Over the memory adapter with a manual clock: nothing here depends on time.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  behaviour,
  createManualClock,
  isDown,
  type TroupeError,
  type Node,
  type NodeEvents,
} from '../core/index.ts';
import { DEFAULTS } from '../core/node-options.ts';
import { connectMemory, createMemoryPair } from '../adapters/memory.ts';
import { rejects, settle, until, useNodes, within } from './helpers/nodes.ts';
import { rawPeer } from './helpers/raw-peer.ts';

type Ev<K extends keyof NodeEvents> = NodeEvents[K];

function record(n: Node) {
  const ev = { dead: [] as Ev<'deadLetter'>[], protocol: [] as Ev<'protocolError'>[] };
  n.events.on('deadLetter', (e) => ev.dead.push(e));
  n.events.on('protocolError', (e) => ev.protocol.push(e));
  return ev;
}

/** An actor that never takes a message (its mailbox only fills). */
const hoarder = async (self: { receive(p: (m: unknown) => boolean): Promise<unknown> }) => {
  await self.receive(() => false);
};

describe('limits', () => {
  const make = useNodes();

  it('every limit has a finite, documented default except the mailbox (unbounded, as in Erlang)', () => {
    expect(DEFAULTS).toMatchObject({
      maxFrameSize: 4 * 1024 * 1024,
      maxDepth: 64,
      hopLimit: 16,
      maxPendingCalls: 100_000,
      handshakeTimeout: 5000,
      highWaterMark: 1024 * 1024,
      maxLinkQueue: 16 * 1024 * 1024,
      maxConnections: 1024,
      maxUnauthenticated: 64,
      exposeStacks: false,
    });
    expect(DEFAULTS.maxMailbox).toBe(Infinity);
    // A link's queue must hold at least one largest message.
    expect(DEFAULTS.maxLinkQueue).toBeGreaterThan(DEFAULTS.maxFrameSize);
  });

  describe('maxMailbox', () => {
    it('local: a send past the bound is a dead letter (mailbox-full), a call rejects MAILBOX_FULL, nothing throws', async () => {
      const n = make({ name: 'mb', clock: createManualClock(), maxMailbox: 3 });
      const ev = record(n);
      const h = n.spawn(hoarder);
      for (let i = 0; i < 5; i++) h.send(i);
      expect(ev.dead.map((d) => [d.reason, d.message, d.error?.code])).toEqual([
        ['mailbox-full', 3, 'MAILBOX_FULL'],
        ['mailbox-full', 4, 'MAILBOX_FULL'],
      ]);
      await rejects(h.call('one more'), 'MAILBOX_FULL', 'a call into a full mailbox');
    });

    it('a per-actor bound overrides the node default; the bound frees up as the actor takes messages', async () => {
      const n = make({ name: 'mb2', clock: createManualClock() }); // default: unbounded
      const ev = record(n);
      const got: unknown[] = [];
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const slow = n.spawn(
        async (self) => {
          await gate;
          for (;;) got.push(await self.receive());
        },
        { maxMailbox: 2 },
      );
      for (let i = 0; i < 4; i++) slow.send(i);
      expect(ev.dead.map((d) => d.message)).toEqual([2, 3]);
      const unbounded = n.spawn(hoarder);
      for (let i = 0; i < 10_000; i++) unbounded.send(i);
      expect(ev.dead).toHaveLength(2);
      release();
      await until(() => got.length === 2, 'the two accepted messages');
      slow.send('after');
      await until(() => got.length === 3, 'a message once there is room');
      expect(got).toEqual([0, 1, 'after']);
    });

    it('remote: sends past the bound are dead letters on the target node, a remote call rejects MAILBOX_FULL at the caller', async () => {
      const clock = createManualClock();
      const a = make({ name: 'a', clock });
      const b = make({ name: 'b', clock, maxMailbox: 2 });
      const evB = record(b);
      await connectMemory(a, b);
      const h = b.spawn(hoarder);
      const remote = a.ref(h.node, h.id);
      for (let i = 0; i < 4; i++) remote.send(i);
      await until(() => evB.dead.length === 2, 'two dead letters on b');
      expect(evB.dead.map((d) => [d.reason, d.message])).toEqual([
        ['mailbox-full', 2],
        ['mailbox-full', 3],
      ]);
      const err = await rejects(
        remote.call('more'),
        'MAILBOX_FULL',
        'a remote call into a full mailbox',
      );
      expect(err.message).toContain('b/');
    });

    it('system messages are never bounded: a DOWN reaches an actor whose mailbox is full', async () => {
      const n = make({ name: 'sys', clock: createManualClock(), maxMailbox: 2 });
      const ev = record(n);
      const target = n.spawn(hoarder);
      const watcher = n.spawn(async (self) => {
        self.monitor(target);
        const d = await self.receive(isDown);
        return d.reason;
      });
      for (let i = 0; i < 5; i++) watcher.send(`filler ${i}`);
      expect(ev.dead).toHaveLength(3);
      target.kill();
      expect((await within(n.waitDown(watcher), 'the watcher gets its DOWN')).result).toBe(
        'killed',
      );
    });
  });

  describe('maxPendingCalls', () => {
    it('the call past the bound rejects MAILBOX_FULL at once; local and remote calls count; room frees as calls settle', async () => {
      const clock = createManualClock();
      const a = make({ name: 'a', clock, maxPendingCalls: 3 });
      const b = make({ name: 'b', clock });
      await connectMemory(a, b);
      const local = a.spawn(hoarder); // never replies
      const onB = b.spawn(hoarder);
      const remote = a.ref(onB.node, onB.id);
      const pending = [
        local.call(1, { timeout: 1000 }),
        remote.call(2, { timeout: 1000 }),
        remote.call(3, { timeout: 60_000 }),
      ];
      for (const p of pending) p.catch(() => {});
      const err = await rejects(local.call(4), 'MAILBOX_FULL', 'the fourth call');
      expect(err.message).toContain('maxPendingCalls');
      await rejects(a.spawn('b', 'anything'), 'MAILBOX_FULL', 'a remote spawn is a call too');
      clock.advance(1000); // two calls time out
      await rejects(pending[0], 'TIMEOUT');
      await rejects(pending[1], 'TIMEOUT');
      const echo = b.spawn(async (self) => {
        for (;;) self.reply(await self.receive());
      });
      expect(
        await within(a.call(a.ref(echo.node, echo.id), 'room again'), 'a call once there is room'),
      ).toBe('room again');
    });
  });

  describe('flow-control window', () => {
    it('a peer that never acks: the node holds envelopes past highWaterMark, drops sends past maxLinkQueue (overflow), refuses calls with MAILBOX_FULL; an ack releases them in order', async () => {
      const clock = createManualClock();
      const n = make({ name: 'win', clock, highWaterMark: 4000, maxLinkQueue: 8000 });
      const ev = record(n);
      const { raw } = rawPeer(n);
      await raw.next(() => raw.nodeHello !== undefined, 'node hello');
      // The node announces its window; the raw peer announces one too, promising acks it won't send.
      expect(raw.nodeHello).toMatchObject({ fc: 4000 });
      raw.sendHello({ fc: 1_000_000 });
      const auth = await raw.nextControl<{ mac: string }>('auth');
      expect(auth.mac).toMatch(/^[0-9a-f]{64}$/);
      raw.sendJson({ t: 'auth', mac: raw.proof('dialer') });
      await raw.nextControl('ok');
      raw.sendJson({ t: 'ok' });
      await until(() => n.peers().includes('raw'), 'the link to come up');
      const target = n.ref('raw', 1);
      const body = 'x'.repeat(100);
      let sent = 0;
      while (!ev.dead.length && sent < 1000) {
        target.send({ i: sent++, body });
        if (sent % 10 === 0) await settle(1);
      }
      expect(ev.dead[0]).toMatchObject({ to: 'raw/1', reason: 'overflow' });
      expect(ev.dead[0].error?.code).toBe('MAILBOX_FULL');
      const stats = n.linkStats()[0];
      expect(stats.holding).toBe(true);
      // Sends take the bulk lane, written while the backlog is at most an eighth of the
      // high-water mark (the rest is kept for calls and control).
      expect(stats.backlog).toBeGreaterThan(4000 / 8);
      expect(stats.queued).toBeLessThanOrEqual(8000);
      await rejects(n.call(target, { body }), 'MAILBOX_FULL', 'a call on the congested link');
      // Bogus acks (more than was sent) are ignored; a true one releases what was held.
      const received = () => raw.inbox.filter((e) => e.startsWith('{"t":"s"')).length;
      const before = received();
      raw.send('{"t":"k","b":999999999}');
      await settle(2);
      clock.advance(20);
      await settle(2);
      expect(received()).toBe(before);
      // Everything received since the link came up, less the separators between envelopes (a
      // slight under-count: an ack must never claim more than was sent, or it is ignored).
      raw.send(`{"t":"k","b":${raw.receivedChars}}`);
      await until(() => received() > before, 'held envelopes to flow after the ack');
      clock.advance(20);
      await settle(2);
      // What arrived is in order, with a gap only where the overflow dead letters were.
      const seqs = raw.inbox
        .filter((e) => e.startsWith('{"t":"s"'))
        .map((e) => (JSON.parse(e.slice(e.indexOf('\t') + 2)) as { i: number }).i);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(ev.protocol).toEqual([]);
    });

    it('with a peer that does not announce a window, no acks are sent or expected (older peers still link)', async () => {
      const n = make({ name: 'nowin', clock: createManualClock(), highWaterMark: 100 });
      const ev = record(n);
      const { raw } = rawPeer(n);
      await raw.handshake(); // its hello has no `fc`
      const sink = n.spawn(hoarder);
      for (let i = 0; i < 50; i++) raw.sendTo(sink.id, 'x'.repeat(50));
      const target = n.ref('raw', 1);
      for (let i = 0; i < 50; i++) target.send('y'.repeat(50));
      await until(
        () => raw.inbox.filter((e) => e.startsWith('{"t":"s"')).length === 50,
        'all 50 envelopes (no window to wait on)',
      );
      expect(raw.inbox.some((e) => e.startsWith('{"t":"k"'))).toBe(false);
      expect(ev.dead).toEqual([]);
    });
  });

  describe('maxConnections and maxUnauthenticated', () => {
    it('accepted connections past maxUnauthenticated are refused at once (told why); slots free when a handshake ends', async () => {
      const clock = createManualClock();
      const n = make({ name: 'gate', clock, maxUnauthenticated: 2, handshakeTimeout: 1000 });
      const ev = record(n);
      const silent = [rawPeer(n, { id: 's1' }), rawPeer(n, { id: 's2' })];
      const third = rawPeer(n, { id: 's3' });
      expect((await within(third.attached, 'the third attach ends')).ok).toBe(false);
      await third.raw.whenClosed();
      expect(
        third.raw.inbox.some((e) => e.includes('"t":"reject"') && e.includes('maxUnauthenticated')),
      ).toBe(true);
      expect(third.raw.nodeHello).toBeUndefined(); // refused before any work
      expect(ev.protocol.map((p) => p.error.message)).toEqual([
        expect.stringContaining('too many unauthenticated connections'),
      ]);
      // Dialed links do not count against the accepting limits.
      const other = make({ name: 'other', clock });
      const [mine, theirs] = createMemoryPair();
      await Promise.all([n.attach(mine, true), other.attach(theirs, false)]);
      expect(n.peers()).toEqual(['other']);
      // The silent ones time out; then a new peer gets in and authenticates.
      clock.advance(1000);
      for (const s of silent) await s.raw.whenClosed();
      const fourth = rawPeer(n, { id: 's4' });
      await fourth.raw.handshake();
      expect(await within(fourth.attached, 'the fourth attach')).toEqual({ ok: true, peer: 's4' });
    });

    it('accepted connections past maxConnections are refused; one closing frees a slot', async () => {
      const n = make({ name: 'full', clock: createManualClock(), maxConnections: 2 });
      const ev = record(n);
      const p1 = rawPeer(n, { id: 'p1' });
      const p2 = rawPeer(n, { id: 'p2' });
      await Promise.all([p1.raw.handshake(), p2.raw.handshake()]);
      const p3 = rawPeer(n, { id: 'p3' });
      const r3 = await within(p3.attached, 'the third attach ends');
      expect(r3.ok).toBe(false);
      expect((r3 as { error: TroupeError }).error.message).toContain('maxConnections');
      expect(ev.protocol).toHaveLength(1);
      p1.raw.conn.close();
      await until(() => !n.peers().includes('p1'), 'p1 gone');
      const p4 = rawPeer(n, { id: 'p4' });
      await p4.raw.handshake();
      expect(n.peers().sort()).toEqual(['p2', 'p4']);
    });
  });

  it('regression: a call whose handler throws rejects ACTOR_EXITED at once (it waited for its timeout: the call being handled was not settled on exit)', async () => {
    const n = make({ name: 'reg', clock: createManualClock() }); // the clock never moves: no timeout can fire
    const crasher = n.spawn(
      behaviour({
        schema: undefined,
        handle: () => {
          throw new Error('handler failed');
        },
      }),
    );
    const err = await rejects(
      n.call(crasher, 'go'),
      'ACTOR_EXITED',
      'a call to a handler that throws',
    );
    expect(err.message).toContain('handler failed');
  });

  describe('exposeStacks', () => {
    for (const expose of [false, true]) {
      it(`remote error stacks cross the wire only when exposeStacks is on (${expose ? 'on' : 'off'})`, async () => {
        const clock = createManualClock();
        const a = make({ name: 'a', clock });
        const b = make({ name: 'b', clock, exposeStacks: expose });
        const [ea, eb] = createMemoryPair({ record: true });
        await Promise.all([a.attach(ea, true), b.attach(eb, false)]);
        function deepInsideNodeB(): never {
          throw new Error('failed on b');
        }
        const crasher = b.spawn(behaviour({ schema: undefined, handle: () => deepInsideNodeB() }));
        const strict = b.spawn(
          behaviour({ schema: z.number(), handle: (m: number, _s, ctx) => void ctx.reply(m) }),
        );
        const err1 = await rejects(
          a.call(a.ref('b', crasher.id), 'go'),
          'ACTOR_EXITED',
          'a call to an actor that crashes',
        );
        const reason = (err1.details as { reason: { stack?: string } }).reason;
        const err2 = await rejects(
          a.call(a.ref('b', strict.id), 'not a number'),
          'INVALID_MESSAGE',
          'a call with an invalid message',
        );
        await settle(2);
        const wire = eb.sent.join('\n');
        if (expose) {
          expect(reason.stack).toContain('deepInsideNodeB');
          expect(wire).toContain('deepInsideNodeB');
          expect(wire).toContain('"stack"');
        } else {
          expect(reason.stack).toBeUndefined();
          expect(wire).not.toContain('deepInsideNodeB');
          expect(wire).not.toContain('"stack"');
          // The caller's error has a stack, but only of its own (rebuilt locally), never b's.
          expect(err2.stack ?? '').not.toContain('#deliver');
        }
      });
    }
  });
});

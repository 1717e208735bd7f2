// Issue 14 — lanes and chunks: calls, replies and control envelopes never wait behind bulk
// traffic on a link. The link writes its priority lane before its bulk lane, keeps bulk below an eighth of
// the high-water mark, and cuts envelopes over 32 Ki characters into piece frames that the peer
// joins back, so a 4 MB message does not hold a 100-byte call. Order holds within a lane, a call
// stays behind sends to its own target, and the accounting on a cut link stays exact.
import { afterEach, describe, expect, it } from 'vitest';
import type { Node } from '../core/index.ts';
import {
  isPiece,
  laneOf,
  OutLane,
  PIECE_CHARS,
  PIECE_SLACK,
  Reassembler,
} from '../core/link-lanes.ts';
import { settle, until, useNodes } from './helpers/nodes.ts';
import { callP99 } from './helpers/flow.ts';
import { rawPeer } from './helpers/raw-peer.ts';
import { eventually, useCluster } from './helpers/cluster.ts';
import type { FaultProxy } from './helpers/fault-proxy.ts';
import { proxiedTcpPair } from './helpers/cut-pair.ts';

const MB = 1024 * 1024;
const SECRET = 'lanes-secret';

describe('lanes (unit)', () => {
  it('sorts envelopes: sends, exit and DOWN signals and route fences are bulk; calls, replies and control are priority', () => {
    expect(laneOf('S4\tj{}')).toBe(1);
    expect(laneOf('{"t":"s","n":"b","o":"a","h":0,"a":4,"f":1}\tj1')).toBe(1);
    expect(laneOf('{"t":"x","n":"b","o":"a","h":0,"a":1,"f":2,"l":1}\t[]')).toBe(1);
    expect(laneOf('{"t":"d","n":"b","o":"a","h":0,"w":1,"m":2,"a":3}\t[]')).toBe(1);
    // The route flush marker stays behind everything written before it.
    expect(laneOf('{"t":"rf","n":"b","o":"a","h":0,"k":1}')).toBe(1);
    expect(laneOf('{"t":"ra","n":"b","o":"a","h":0,"k":1}')).toBe(0);
    for (const text of [
      'C4,9\tj1',
      'R9,1\tj1',
      '{"t":"c","n":"b","o":"a","h":0,"a":4,"c":1}\tj1',
      '{"t":"sp","n":"b"}',
      '{"t":"ss","l":0}',
      '{"t":"sr","n":"b"}',
      '{"t":"dm","n":"b"}',
      '{"t":"dr","n":"b"}',
      '{"t":"fg","n":"b"}',
      '{"t":"m","n":"b"}',
      '{"t":"hb"}',
    ])
      expect(laneOf(text), text).toBe(0);
  });

  it('cuts a long envelope into pieces (never inside a surrogate pair) that join back whole', () => {
    const lane = new OutLane(1);
    // A surrogate pair straddling the first cut point; a last piece longer than the slack.
    const text = `S1\t${'a'.repeat(PIECE_CHARS - 4)}😀${'b'.repeat(PIECE_CHARS * 2 + PIECE_SLACK)}`;
    lane.push(text);
    lane.push('S1\tj2');
    const frames: string[] = [];
    const completed: string[][] = [];
    while (!lane.empty) {
      const f = lane.next(64 * 1024, PIECE_CHARS);
      frames.push(f.frame);
      completed.push(f.envs);
    }
    expect(frames.length).toBe(5); // 4 pieces, then the small envelope alone
    expect(frames.slice(0, 4).every(isPiece)).toBe(true);
    expect(frames[0].startsWith('P1\t')).toBe(true);
    expect(frames[3].startsWith('E1\t')).toBe(true);
    // No piece ends with a lone high surrogate.
    for (const f of frames) expect((f.charCodeAt(f.length - 1) & 0xfc00) === 0xd800).toBe(false);
    // Only the last piece completes the envelope (what the accounting keeps until acknowledged).
    expect(completed.map((e) => e.length)).toEqual([0, 0, 0, 1, 1]);
    expect(lane.chars).toBe(0);
    const r = new Reassembler();
    const out = frames.slice(0, 4).map((f) => r.take(f, 4 * MB));
    expect(out.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(out[3]).toBe(text);
    // A peer that sends pieces past the limit is refused (null), before joining anything.
    const r2 = new Reassembler();
    expect(r2.take(`P0\t${'x'.repeat(1000)}`, 1500)).toBeUndefined();
    expect(r2.take(`P0\t${'x'.repeat(1000)}`, 1500)).toBeNull();
  });

  it('lets the last piece take a short tail: a 64 KiB stream chunk is 2 piece frames, not 3', () => {
    // A stream chunk of 64 Ki characters with its message and envelope headers (issue 14).
    const chunk = `{"t":"s","n":"b","o":"a","h":0,"a":4,"f":1}\tj"~c12:${'x'.repeat(64 * 1024)}"`;
    for (const text of [chunk, `S1\t${'y'.repeat(PIECE_CHARS - 5)}😀${'z'.repeat(PIECE_SLACK)}`]) {
      const lane = new OutLane(1);
      lane.push(text);
      const frames: string[] = [];
      while (!lane.empty) frames.push(lane.next(64 * 1024, PIECE_CHARS).frame);
      expect(frames.length, text.slice(0, 20)).toBe(text === chunk ? 2 : 1);
      expect(frames.every(isPiece)).toBe(true);
      // No piece is longer than a piece and its slack (the receiver's frame limit still bounds it).
      for (const f of frames) expect(f.length - 3).toBeLessThanOrEqual(PIECE_CHARS + PIECE_SLACK);
      const r = new Reassembler();
      expect(frames.map((f) => r.take(f, 4 * MB)).at(-1)).toBe(text);
    }
    // Not past our own frame limit: with frames of at most 33,000 chars the tail stays apart.
    const lane = new OutLane(1);
    lane.push(chunk.slice(0, 33_000));
    const sizes: number[] = [];
    while (!lane.empty) sizes.push(lane.next(33_000, PIECE_CHARS).frame.length);
    expect(sizes).toEqual([PIECE_CHARS + 3, 33_000 - PIECE_CHARS + 3]);
  });

  it('knows which targets its queued sends are for (a call stays behind sends to its own target)', () => {
    const lane = new OutLane(1);
    lane.push('S4\tj1');
    lane.push('{"t":"s","n":"c","o":"a","h":0,"a":7}\tj1');
    expect(lane.holdsFor('C4,1\tj1', 'b')).toBe(true);
    expect(lane.holdsFor('C5,1\tj1', 'b')).toBe(false);
    expect(lane.holdsFor('{"t":"c","n":"c","o":"a","h":0,"a":7,"c":2}\tj1', 'b')).toBe(true);
    expect(lane.holdsFor('{"t":"c","n":"b","o":"a","h":0,"a":4,"c":2}\tj1', 'b')).toBe(true);
    lane.push('S5\tj1');
    expect(lane.holdsFor('C5,1\tj1', 'b')).toBe(true);
    lane.next(64 * 1024, PIECE_CHARS); // all three leave in one frame
    expect(lane.holdsFor('C4,1\tj1', 'b')).toBe(false);
  });
});

describe('lanes on the wire (raw peer)', () => {
  const make = useNodes();

  it('a call overtakes the rest of a chunked 200 KB send; the pieces join back; a call to the same target stays behind its sends', async () => {
    const n = make({ name: 'lanes', highWaterMark: 64 * 1024 });
    const { raw } = rawPeer(n);
    await raw.next(() => raw.nodeHello !== undefined, 'node hello');
    expect(raw.nodeHello).toMatchObject({ ch: 1 });
    raw.sendHello({ fc: 1_000_000, ch: 1 });
    await raw.nextControl('auth');
    raw.sendJson({ t: 'auth', mac: raw.proof('dialer') });
    await raw.nextControl('ok');
    raw.sendJson({ t: 'ok' });
    await until(() => n.peers().includes('raw'), 'the link to come up');
    await settle(3);
    const big = 'z'.repeat(200 * 1024);
    n.ref('raw', 1).send(big);
    await settle(3);
    // Bulk is written while the backlog is at most an eighth of the window (8 Ki): one piece, then held.
    const pieces = () => raw.inbox.filter((e) => isPiece(e));
    expect(pieces().length).toBe(1);
    const call = n.call(n.ref('raw', 2), 'ping', { timeout: 5000 }).catch(() => undefined);
    await until(() => raw.inbox.some((e) => e.startsWith('{"t":"c"')), 'the call to overtake');
    // A call to actor 1 (whose send is still being written) waits behind it.
    const sameTarget = n.call(n.ref('raw', 1), 'after', { timeout: 5000 }).catch(() => undefined);
    await settle(3);
    expect(raw.inbox.filter((e) => e.startsWith('{"t":"c"')).length).toBe(1);
    expect(pieces().length).toBe(1);
    // Acks release the rest: every piece, then the call to actor 1.
    for (let i = 0; i < 20 && !raw.inbox.some((e) => e.startsWith('E1\t')); i++) {
      raw.send(`{"t":"k","b":${raw.receivedChars}}`);
      await settle(3);
    }
    await until(() => raw.inbox.filter((e) => e.startsWith('{"t":"c"')).length === 2, 'call 2');
    const inbox = raw.inbox.filter((e) => !e.startsWith('{"t":"hb"') && !e.startsWith('{"t":"m'));
    const first = inbox.findIndex((e) => isPiece(e));
    const last = inbox.findIndex((e) => e.startsWith('E1\t'));
    const calls = inbox.flatMap((e, i) => (e.startsWith('{"t":"c"') ? [i] : []));
    expect(calls[0]).toBeGreaterThan(first);
    expect(calls[0]).toBeLessThan(last);
    expect(calls[1]).toBeGreaterThan(last);
    const joined = inbox
      .slice(first, last + 1)
      .filter(isPiece)
      .map((e) => e.slice(3))
      .join('');
    // A long string without `\n` travels verbatim (codec `t`, docs/protocol.md "Payloads").
    expect(joined).toBe(`S1\tt${big}`);
    void call;
    void sameTarget;
  });

  it('a peer without `ch` in its hello gets whole envelopes (no pieces)', async () => {
    const n = make({ name: 'nochunk' });
    const { raw } = rawPeer(n);
    await raw.handshake();
    await until(() => n.peers().includes('raw'), 'the link to come up');
    n.ref('raw', 1).send('q'.repeat(100 * 1024));
    await until(() => raw.inbox.some((e) => e.startsWith('{"t":"s"')), 'the send');
    expect(raw.inbox.some((e) => isPiece(e))).toBe(false);
  });
});

describe('adaptive bulk share and ack rate (raw peer)', () => {
  const make = useNodes();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const up = async (hello: Record<string, unknown>) => {
    const n = make({ name: 'share', highWaterMark: 256 * 1024 });
    const { raw } = rawPeer(n);
    // The characters of the frames received after the handshake (what an ack counts: the
    // envelopes and the separators between them).
    const got = { chars: 0 };
    const take = raw.conn.onframe!;
    raw.conn.onframe = (frame) => {
      if (!/^\{"t":"(hello|auth|ok)"/.test(frame)) got.chars += frame.length;
      take(frame);
    };
    await raw.handshake(hello);
    await until(() => n.peers().includes('raw'), 'the link to come up');
    await settle(3);
    return { n, raw, got };
  };
  const pieces = (raw: { inbox: readonly string[] }) => raw.inbox.filter((e) => isPiece(e)).length;
  const acks = (raw: { inbox: readonly string[] }) =>
    raw.inbox.filter((e) => e.startsWith('{"t":"k"')).length;

  it('bulk runs 7/8 of the window ahead while no priority frame is unacknowledged, 1/8 while one is', async () => {
    const { n, raw, got } = await up({ fc: 1_000_000, ch: 1 });
    // Acknowledge the link-up control frames; 20 ms after that ack priority traffic is quiet.
    raw.send(`{"t":"k","b":${got.chars}}`);
    await sleep(60);
    n.ref('raw', 1).send('q'.repeat(400 * 1024)); // 13 pieces
    await settle(3);
    // Quiet: bulk written while the backlog is at most 7/8 of 256 Ki less a batch (160 Ki): five
    // pieces of 32 Ki (and 3 characters of piece header).
    expect(pieces(raw)).toBe(5);
    // A call is written at once (the backlog is under the window) and makes priority traffic
    // active: no more bulk while the call is unacknowledged and the backlog is above 32 Ki.
    void n.call(n.ref('raw', 2), 'ping', { timeout: 5000 }).catch(() => undefined);
    await until(() => raw.inbox.some((e) => e.startsWith('{"t":"c"')), 'the call');
    raw.send(`{"t":"k","b":${got.chars - 1}}`); // everything but the call's frame
    await settle(3);
    // The backlog fell to a few characters (the call), under 32 Ki: exactly one more piece.
    expect(pieces(raw)).toBe(6);
    await sleep(60);
    expect(pieces(raw)).toBe(6); // still held: the call is not acknowledged
    // Once the call is acknowledged and 20 ms have passed, bulk runs at the quiet mark again
    // (the 10 ms poll notices): five more pieces.
    raw.send(`{"t":"k","b":${got.chars}}`);
    await sleep(60);
    expect(pieces(raw)).toBe(11);
  });

  it('the receiver acks every quarter of the window while the peer sends bulk only, every sixteenth after a priority frame', async () => {
    const { raw } = await up({ fc: 64_000, ch: 1 });
    await settle(3);
    const before = acks(raw);
    // 1000-char sends to an actor that does not exist (dead letters: still frames taken in).
    const body = `j"${'b'.repeat(996)}"`;
    const bulk = (k: number) => {
      for (let i = 0; i < k; i++) raw.send(`S999\t${body}`);
    };
    bulk(40); // about 40 000 chars: an ack at 16 000 and at 32 000
    await settle(5);
    expect(acks(raw) - before).toBe(2);
    // A priority frame (a heartbeat) in, then the fine rate: an ack every 4 000 chars.
    raw.send('{"t":"hb"}');
    bulk(40);
    await settle(5);
    const fine = acks(raw) - before - 2;
    expect(fine).toBeGreaterThanOrEqual(9);
    expect(fine).toBeLessThanOrEqual(11);
    // 100 ms after the ack that covered it, back to the quarter rate.
    await sleep(250);
    const quiet = acks(raw);
    bulk(40);
    await settle(5);
    expect(acks(raw) - quiet).toBeLessThanOrEqual(3);
  });
});

describe('lanes over TCP between processes', () => {
  const cluster = useCluster();

  const connect = async () => {
    const consumer = await cluster.script('consumer', 'tests/fixtures/flow-consumer.ts', [SECRET]);
    const node = await cluster.node({ secret: SECRET, listen: false, autoConnect: false });
    await node.connect(consumer.address);
    const sink = await eventually(() => node.whereis('sink'), 'the sink');
    await eventually(() => node.whereis('sinkstats'), 'the stats');
    return { node, sink };
  };
  type Stats = { received: number; outOfOrder: number; chars: number };
  type Sink = Awaited<ReturnType<typeof connect>>['sink'];

  /** Awaited 1 MB sends of `fill` to `sink` until `stop()`, which resolves to how many went. */
  const flood = (sink: Sink, fill: string) => {
    const data = fill.repeat(MB);
    let flooding = true;
    const counter = { sent: 0 };
    const done = (async () => {
      while (flooding) {
        await sink.sendAwait({ i: counter.sent, data });
        counter.sent++;
      }
    })();
    return {
      counter,
      stop: async () => {
        flooding = false;
        await done;
        return counter.sent;
      },
    };
  };
  /** The sink's stats once it has every one of `sent` messages. */
  const allArrived = (node: Node, sent: number) =>
    eventually(async () => {
      const s = await node.call<Stats>('sinkstats', null);
      return s.received === sent ? s : undefined;
    }, 'every flood message to arrive');

  it('call p99 under a saturating flood of awaited 1 MB sends on the same link stays near the quiet p99', async () => {
    const { node, sink } = await connect();
    const p99 = (n: number) => callP99(node, 'sinkstats', n);
    await p99(100); // warm-up
    const quiet = await p99(300);
    const f = flood(sink, 'f');
    await new Promise((r) => setTimeout(r, 200)); // the flood fills its window first
    const loud = await p99(300);
    const sent = await f.stop();
    const stats = await allArrived(node, sent);
    console.log(
      `[lanes/call under flood] call p99 quiet ${quiet.toFixed(2)} ms, under a flood of awaited 1 MB sends ${loud.toFixed(2)} ms (${(loud / quiet).toFixed(1)}x; ${sent} MB sent meanwhile)`,
    );
    expect(sent).toBeGreaterThan(10);
    expect(stats.outOfOrder).toBe(0);
    // Generous on a loaded machine: within 10x of quiet, or under 300 ms (without lanes the same
    // flood gave 365-516 ms p99 in bench runs on this machine; with them 28-192 ms).
    expect(loud).toBeLessThan(Math.max(10 * quiet, 300));
  }, 120_000);

  it('awaited 1 MB sends run far ahead while no call is made; while calls are made, about an eighth of the window of bulk is ahead of each', async () => {
    const { node, sink } = await connect();
    const window = 1024 * 1024; // the default highWaterMark
    const f = flood(sink, 'g');
    // No calls: sample the backlog on every turn while 30 MB go.
    let peakQuiet = 0;
    while (f.counter.sent < 30) {
      peakQuiet = Math.max(peakQuiet, node.linkStats()[0].backlog);
      await new Promise((r) => setImmediate(r));
    }
    // Calls one after another: the bulk written ahead of each call.
    const ahead: number[] = [];
    for (let i = 0; i < 200; i++) {
      ahead.push(node.linkStats()[0].backlog);
      await node.call('sinkstats', null, { timeout: 30_000 });
    }
    const sent = await f.stop();
    const stats = await allArrived(node, sent);
    const sorted = ahead.slice(5).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.floor(q * (sorted.length - 1))];
    console.log(
      `[lanes/share] backlog peak with no calls ${(peakQuiet / 1024).toFixed(0)} KiB; ahead of a call p50 ${(at(0.5) / 1024).toFixed(0)} KiB, p90 ${(at(0.9) / 1024).toFixed(0)} KiB, max ${(at(1) / 1024).toFixed(0)} KiB (window ${window / 1024} KiB; ${sent} MB sent)`,
    );
    expect(stats.outOfOrder).toBe(0);
    // Quiet: bulk runs up to 7/8 of the window less a batch (832 Ki) ahead; the old rule
    // (an eighth) never passed 128 Ki plus one frame.
    expect(peakQuiet).toBeGreaterThan(window / 2);
    // Active: bulk written while the backlog is at most an eighth, plus the frame that crossed it.
    expect(at(0.5)).toBeLessThanOrEqual(window / 8 + 64 * 1024);
  }, 120_000);

  it('a 4 MB message does not hold the calls made while it is being written; it arrives intact', async () => {
    const { node, sink } = await connect();
    const data = 'm'.repeat(4_000_000); // 4 MB, under the 4 Mi-char limit
    const sent = sink.sendAwait({ i: 0, data });
    // Once the first pieces are on their way, call: the answer comes before the message is in.
    await eventually(
      () => (node.linkStats()[0].backlog > 0 ? true : undefined),
      'the first pieces to leave',
    );
    const t0 = performance.now();
    const during = await node.call<Stats>('sinkstats', null, { timeout: 30_000 });
    const ms = performance.now() - t0;
    await sent;
    const after = await eventually(async () => {
      const s = await node.call<Stats>('sinkstats', null);
      return s.received === 1 ? s : undefined;
    }, 'the 4 MB message');
    console.log(`[lanes/4 MB] a call during the 4 MB send took ${ms.toFixed(2)} ms`);
    expect(during.received).toBe(0);
    expect(after.chars).toBe(4_000_000);
    expect(after.outOfOrder).toBe(0);
  }, 60_000);
});

describe('chunks on a cut link', () => {
  const nodes: Node[] = [];
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  });

  it('large and small sends and calls cut at random points, 8 times: every send received intact or dead-lettered, none twice', async () => {
    const ROUNDS = 8;
    const N = 300;
    const summary: string[] = [];
    let missingTotal = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { a, b, proxy } = await proxiedTcpPair(`cut${round}`, SECRET);
      nodes.push(a, b);
      proxies.push(proxy);
      const received = new Uint8Array(N);
      let corrupt = 0;
      let twice = 0;
      const bad: string[] = [];
      b.events.on('protocolError', (e) => bad.push(String(e.error?.message ?? e)));
      b.events.on('invalidMessage', (e) => bad.push(String(e.error?.message ?? e)));
      const sink = b.spawn(async (self) => {
        for (;;) {
          const m = (await self.receive()) as { seq: number; pad: string };
          if (received[m.seq]) twice++;
          received[m.seq] = 1;
          if (m.pad !== sizeOf(m.seq).char.repeat(sizeOf(m.seq).n)) corrupt++;
        }
      });
      const echo = b.spawn(async (self) => {
        for (;;) self.reply(await self.receive());
      });
      await a.connect(proxy.address);
      const dead = new Uint8Array(N);
      const reasons: Record<string, number> = {};
      a.events.on('deadLetter', (e) => {
        reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
        const seq = (e.message as { seq?: unknown } | undefined)?.seq;
        if (typeof seq === 'number') dead[seq] = 1;
      });
      const ref = a.ref(sink.node, sink.id);
      const echoRef = a.ref(echo.node, echo.id);
      const cutAt = 20 + Math.floor(Math.random() * (N - 40));
      for (let seq = 0; seq < N; seq++) {
        if (seq === cutAt) proxy.cut('reset');
        const { n, char } = sizeOf(seq);
        ref.send({ seq, pad: char.repeat(n) });
        if (seq % 7 === 0) void a.call(echoRef, seq, { timeout: 5000 }).catch(() => undefined);
        if (seq % 10 === 9) await new Promise((r) => setTimeout(r, 1));
      }
      const until = Date.now() + 10_000;
      while ((a.peers().length || b.peers().length) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      let missing = 0;
      let got = 0;
      for (let i = 0; i < N; i++) {
        if (received[i]) got++;
        if (!received[i] && !dead[i]) missing++;
      }
      missingTotal += missing + corrupt + twice + bad.length;
      summary.push(
        `#${round}: cut at ${cutAt}, received ${got}, dead ${JSON.stringify(reasons)}, missing ${missing}, corrupt ${corrupt}, twice ${twice}, errors ${bad.join('; ')}`,
      );
      await Promise.all([a.shutdown(), b.shutdown()]);
      await proxy.close();
    }
    console.log(`[lanes/cut] chunked sends on a cut link:\n${summary.join('\n')}`);
    expect(missingTotal, summary.join('\n')).toBe(0);
  }, 120_000);
});

/** Message sizes of the cut test: every third one is 100 KB to 1 MB (chunked), others small. */
function sizeOf(seq: number): { n: number; char: string } {
  const char = String.fromCharCode(97 + (seq % 26));
  return seq % 3 === 0 ? { n: 100_000 + ((seq * 7919) % 900_000), char } : { n: 50, char };
}

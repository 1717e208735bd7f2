// Browser routing scenarios, run inside a loopback-only network namespace by
// tests/browser/routing.browser.test.ts: `node --import tsx routing.ts <scenario>…`. Each prints
// one `RESULT {json}` line with what it measured; the test file asserts on it.
import { PROTOCOL_VERSION, type Node } from '../../../core/index.ts';
import { buildFixtures } from '../harness/build.ts';
import {
  routingSetup,
  runScenarios,
  rnd,
  timeout,
  type BrowserEnv,
  type FxPage,
  type RoutingCtx,
} from '../harness/env.ts';

type Env = BrowserEnv & RoutingCtx;
import { serveStatic } from '../harness/static-server.ts';
import type { LinkStat } from '../fixtures/page.ts';

const stat = (stats: LinkStat[], node: string) => stats.find((s) => s.node === node);
import type { BulkReport, PingerResult } from '../fixtures/behaviours.ts';
import { waitFor } from '../fixtures/behaviours.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

/** How long a monitor may wait for DOWN: the failure-detection timeout, plus slack for a loaded machine. */
const DOWN_WAIT = FIXTURE_TIMING.heartbeatTimeout * 2 + 15_000;
const LINK_WAIT = 30_000;

/** Open a page and start its node; returns the page and its node's id. */
async function startPage(
  env: Env,
  tag: string,
  webrtc: boolean,
  autoConnect = true,
): Promise<{ p: FxPage; id: string; relay: string; addresses: string[] }> {
  const p = await env.openFixture(env, tag);
  const started = await p.call<{ id: string; relay: string; addresses: string[] }>('start', [
    { ...env.startOptions(`${tag}-${rnd()}`, webrtc), autoConnect },
  ]);
  return { p, ...started };
}

/** Two pages linked to each other directly over WebRTC (both dial-able; gossip makes one dial). */
async function webrtcPair(
  env: Env,
): Promise<[Awaited<ReturnType<typeof startPage>>, Awaited<ReturnType<typeof startPage>>]> {
  const [a, b] = await Promise.all([startPage(env, 'tab-a', true), startPage(env, 'tab-b', true)]);
  await Promise.all([
    a.p.call('waitLink', [b.id, 'webrtc://', LINK_WAIT]),
    b.p.call('waitLink', [a.id, 'webrtc://', LINK_WAIT]),
  ]);
  return [a, b];
}

/** Watch `name` from a Node node; resolves with the DOWN reason (bounded). */
function watchFromNode(node: Node, name: string): Promise<{ reason: unknown }> {
  return (async () => {
    const ref = await waitFor(`"${name}" on ${node.id}`, () => node.whereis(name), 20_000);
    return new Promise<{ reason: unknown }>((resolve) =>
      node.watch(ref, (d) => resolve({ reason: d.reason })),
    );
  })();
}

const scenarios: Record<string, (env: Env) => Promise<unknown>> = {
  /**
   * worker A → tab A → WebRTC → tab B → worker B and back: a pinger in A's worker sends its own
   * ref in each ping to an echo in B's worker, which answers through it.
   */
  async 'webrtc-worker-chain'(env) {
    const [a, b] = await webrtcPair(env);
    const [wa, wb] = await Promise.all([
      a.p.call<string>('spawnWorker'),
      b.p.call<string>('spawnWorker'),
    ]);
    const target = `echo-b-${rnd()}`;
    await b.p.call('spawn', [wb, 'echo', { name: target }]);
    await a.p.call('waitReachable', [wb, 20_000]);
    const count = 300;
    const before = await a.p.call<LinkStat[]>('linkStats');
    const run = await a.p.call<{ reason: unknown; result: PingerResult }>('run', [
      wa,
      'pinger',
      { target, count, timeout: 30_000 },
      45_000,
    ]);
    const after = await a.p.call<LinkStat[]>('linkStats');
    const bStats = await b.p.call<LinkStat[]>('linkStats');
    return { a: a.id, b: b.id, relay: a.relay, wa, wb, count, before, after, bStats, run };
  },

  /**
   * The route shortens without reordering: a steady stream from an actor in tab A to one in tab
   * B goes through the relay (no direct link: the pages do not auto-dial); mid-stream tab A dials
   * B over WebRTC; the rest of the stream takes the direct link, and B records every message in order.
   */
  async 'route-shortens'(env) {
    const [a, b] = await Promise.all([
      startPage(env, 'short-a', true, false),
      startPage(env, 'short-b', true, false),
    ]);
    const recorder = `recorder-${rnd()}`;
    await b.p.call('spawn', [b.id, 'recorder', { name: recorder }]);
    await a.p.call('waitName', [recorder, 20_000]);
    const peersBefore = await a.p.call<string[]>('peers');
    const before = await a.p.call<LinkStat[]>('linkStats');
    const batch = 200;
    const afterStop = 10;
    const streamer = await a.p.call<string>('spawn', [
      a.id,
      'streamer',
      { target: recorder, batch, gapMs: 1, afterStop, maxCount: 200_000, timeout: 20_000 },
    ]);
    const done = await a.p.call<string>('watch', [streamer, 5000]);
    // The stream flows through the relay before the direct link exists.
    const relayOutBefore = stat(before, a.relay)!.envelopesOut;
    const flowing = await a.p.until<LinkStat[]>(
      'fx',
      'linkStats',
      [],
      (s) => stat(s, a.relay)!.envelopesOut - relayOutBefore >= 200,
      'the stream to flow through the relay',
      20_000,
    );
    const address = b.addresses.find((x) => x.startsWith('webrtc://'));
    if (!address)
      throw new Error(`tab B announces no webrtc:// address: ${b.addresses.join(', ')}`);
    await a.p.call('dial', [address], 30_000);
    const mid = await a.p.call<LinkStat[]>('linkStats');
    await a.p.call('sendKey', [streamer, 'stop']);
    const end = await a.p.call<{ reason: unknown; result: { sent: number; stoppedAt: number } }>(
      'awaitResult',
      [done, 60_000],
      65_000,
    );
    const seqs = await b.p
      .until<number[]>(
        'fx',
        'callName',
        [recorder, 'seqs', 10_000],
        (v) => v.length >= end.result.sent,
        'every streamed message at the recorder',
        30_000,
      )
      .catch(async () => b.p.call<number[]>('callName', [recorder, 'seqs', 10_000]));
    // Read tab A's link counters only once the recorder has everything: until the old route's
    // flush marker is answered, the route switch holds the tail in tab A (it leaves on the
    // direct link afterwards), and under load that can outlast the streamer itself.
    const after = await a.p.call<LinkStat[]>('linkStats');
    const disorder = seqs.findIndex((v, i) => v !== i + 1);
    return {
      a: a.id,
      b: b.id,
      relay: a.relay,
      peersBefore,
      flowing,
      mid,
      after,
      batch,
      afterStop,
      end,
      received: seqs.length,
      disorder,
      around: disorder < 0 ? [] : seqs.slice(Math.max(0, disorder - 5), disorder + 10),
    };
  },

  /** The same chain with no WebRTC at all (WebSocket only): worker A → tab A → relay → tab B → worker B. */
  async 'relay-worker-chain'(env) {
    const [a, b] = await Promise.all([
      startPage(env, 'ws-a', false),
      startPage(env, 'ws-b', false),
    ]);
    const [wa, wb] = await Promise.all([
      a.p.call<string>('spawnWorker'),
      b.p.call<string>('spawnWorker'),
    ]);
    const target = `echo-wsb-${rnd()}`;
    await b.p.call('spawn', [wb, 'echo', { name: target }]);
    const count = 100;
    const before = await a.p.call<LinkStat[]>('linkStats');
    const run = await a.p.call<{ reason: unknown; result: PingerResult }>('run', [
      wa,
      'pinger',
      { target, count, timeout: 15_000 },
      30_000,
    ]);
    const after = await a.p.call<LinkStat[]>('linkStats');
    const deadLetters = (await a.p.call<string[]>('events'))
      .filter((e) => e.startsWith('deadLetter'))
      .slice(0, 5);
    return {
      a: a.id,
      b: b.id,
      relay: a.relay,
      wa,
      wb,
      count,
      before,
      after,
      run,
      aPeers: await a.p.call('peers'),
      deadLetters,
    };
  },

  /** A page and its worker call an actor on the TCP node through the relay, and the TCP node calls theirs. */
  async 'browser-tcp'(env) {
    const c = await startPage(env, 'tab-c', false);
    const wc = await c.p.call<string>('spawnWorker');
    const tcpEcho = `tcp-echo-${rnd()}`;
    await env.tcp.spawn(env.tcp.id, 'echo', { name: tcpEcho });
    // browser → TCP node
    const pageCall = await c.p.call('callName', [tcpEcho, { hello: 'from the page' }, 20_000]);
    // browser worker → TCP node: 100 pings carrying the worker actor's ref, answered through it
    const workerRun = await c.p.call<{ reason: unknown; result: PingerResult }>('run', [
      wc,
      'pinger',
      { target: tcpEcho, count: 100, timeout: 30_000 },
      45_000,
    ]);
    // TCP node → page actor and → worker actor
    const pageEcho = `page-echo-${rnd()}`;
    const workerEcho = `worker-echo-${rnd()}`;
    await c.p.call('spawn', [c.id, 'echo', { name: pageEcho }]);
    await c.p.call('spawn', [wc, 'echo', { name: workerEcho }]);
    await waitFor(`"${pageEcho}" on the TCP node`, () => env.tcp.whereis(pageEcho), 20_000);
    await waitFor(`"${workerEcho}" on the TCP node`, () => env.tcp.whereis(workerEcho), 20_000);
    const nodeCallsPage = await env.tcp.call(pageEcho, { hello: 'from node' }, { timeout: 20_000 });
    const nodeCallsWorker = await env.tcp.call(
      workerEcho,
      { hello: 'from node' },
      { timeout: 20_000 },
    );
    // TCP node → browser worker: 100 pings from a Node actor, answered through its ref
    const nodeRun = await timeout(
      'the TCP node pinger',
      new Promise<{ reason: unknown; result: unknown }>((resolve, reject) => {
        env.tcp.spawn(async (self) => {
          try {
            const child = await self.spawnOn(
              env.tcp.id,
              'pinger',
              { target: workerEcho, count: 100, timeout: 30_000 },
              { monitor: true },
            );
            const d = (await self.receive(
              (m: unknown) => (m as { type?: string })?.type === 'DOWN',
              { timeout: 45_000 },
            )) as { reason: unknown; result: unknown; ref: unknown };
            if (!child.equals(d.ref)) throw new Error('DOWN of another actor');
            resolve({ reason: d.reason, result: d.result });
          } catch (err) {
            reject(err);
          }
        });
      }),
      50_000,
    );
    return {
      page: c.id,
      worker: wc,
      tcp: env.tcp.id,
      relay: env.relay.node.id,
      pageCall,
      workerRun,
      nodeCallsPage,
      nodeCallsWorker,
      nodeRun,
    };
  },

  /** Closing a page: monitors in another page (over WebRTC) and on the TCP node get `noconnection`. */
  async 'page-close'(env) {
    const [a, b] = await webrtcPair(env);
    const victim = `victim-a-${rnd()}`;
    await a.p.call('spawn', [a.id, 'echo', { name: victim }]);
    const fromB = await b.p.call<string>('watch', [victim, 20_000]);
    const fromNode = watchFromNode(env.tcp, victim);
    // Both monitors are in place once the victim answers a call from each side.
    await b.p.call('callName', [victim, 'ping', 20_000]);
    await env.tcp.call(victim, 'ping', { timeout: 20_000 });
    const downEarly = await b.p.call('downOf', [fromB]);
    await a.p.close();
    const [bReason, nodeDown] = await Promise.all([
      b.p.call('awaitDown', [fromB, DOWN_WAIT], DOWN_WAIT + 5000),
      timeout('DOWN on the TCP node', fromNode, DOWN_WAIT),
    ]);
    return {
      a: a.id,
      b: b.id,
      downEarly,
      bReason,
      nodeReason: nodeDown.reason,
      bPeersAfter: await b.p.call('peers'),
    };
  },

  /** Terminating a worker: monitors in its page, in another page and on the TCP node get `noconnection`. */
  async 'worker-terminate'(env) {
    const [a, b] = await webrtcPair(env);
    const wb = await b.p.call<string>('spawnWorker');
    const victim = `victim-w-${rnd()}`;
    await b.p.call('spawn', [wb, 'echo', { name: victim }]);
    const inOwnPage = await b.p.call<string>('watch', [victim, 20_000]);
    const inOtherPage = await a.p.call<string>('watch', [victim, 20_000]);
    const victimKey = await a.p.call<string>('keyOf', [victim]);
    const fromNode = watchFromNode(env.tcp, victim);
    await a.p.call('callName', [victim, 'ping', 20_000]);
    await b.p.call('callName', [victim, 'ping', 20_000]);
    await env.tcp.call(victim, 'ping', { timeout: 20_000 });
    await b.p.call('terminateWorker', [wb]);
    const [ownReason, otherReason, nodeDown] = await Promise.all([
      b.p.call('awaitDown', [inOwnPage, DOWN_WAIT], DOWN_WAIT + 5000),
      a.p.call('awaitDown', [inOtherPage, DOWN_WAIT], DOWN_WAIT + 5000),
      timeout('DOWN on the TCP node', fromNode, DOWN_WAIT),
    ]);
    // A call after the worker is gone fails (it does not hang).
    const callAfter = await a.p.call('callKey', [victimKey, 'ping', 10_000]).then(
      (v) => ({ ok: true, v }),
      (e: Error) => ({ ok: false, error: e.message }),
    );
    return { wb, ownReason, otherReason, nodeReason: nodeDown.reason, callAfter };
  },

  /**
   * A page with a wrong credential is refused and nothing it sends is delivered; a page with the
   * right one gets through to the same sink (the control).
   */
  async 'wrong-credential'(env) {
    const sinkName = `sink-${rnd()}`;
    const sink = await env.tcp.spawn(env.tcp.id, 'sink', { name: sinkName });
    const relayRefusals: string[] = [];
    const off = env.relay.node.events.on('protocolError', (e) =>
      relayRefusals.push(`${e.error.code}: ${e.error.message}`),
    );
    env.defer(() => off?.());
    const good = await startPage(env, 'good', false);
    // A send by name to a name the page has not heard of yet is a dead letter: wait for the
    // registry entry to reach the page (TCP node → relay → page) before the control send.
    await good.p.call('waitName', [sinkName, 20_000], 25_000);
    await good.p.call('sendName', [sinkName, 'from the good page']);
    const countAfterGood = await waitForCount(env.tcp, sinkName, 1);

    // A node with a wrong credential: the handshake fails, the link never comes up.
    const bad = await env.openFixture(env, 'bad');
    const badOptions = {
      ...env.startOptions(`bad-${rnd()}`, false),
      secret: `${env.credential.secret}-wrong`,
    };
    const badStart = await bad.call('start', [badOptions]).then(
      (v) => ({ ok: true, v }),
      (e: Error) => ({ ok: false, error: e.message }),
    );
    const badSend = await bad.call('sendName', [sinkName, 'from the bad page']).then(
      () => 'sent',
      (e: Error) => e.message,
    );
    // A bare socket that skips the handshake and forges a send to the sink, before and after a bogus hello.
    const forged = `{"t":"s","n":${JSON.stringify(env.tcp.id)},"o":"intruder","h":0,"a":${sink.id}}\tj"forged"`;
    const hello = JSON.stringify({
      t: 'hello',
      v: PROTOCOL_VERSION,
      node: 'intruder',
      inc: 'x1',
      nonce: '0'.repeat(32),
      addrs: [],
    });
    const auth = JSON.stringify({ t: 'auth', mac: '0'.repeat(64) });
    const rawFirst = await bad.call('rawWebSocket', [env.wsUrl, [forged], 10_000], 20_000);
    const rawAfterHello = await bad.call(
      'rawWebSocket',
      [env.wsUrl, [hello, auth, forged], 10_000],
      20_000,
    );
    // Without the credential's token, or with a forged one, the relay refuses the WebSocket itself.
    const noToken = await bad.call(
      'rawWebSocket',
      [env.wsUrl.replace(/\?.*$/, ''), [forged], 10_000],
      20_000,
    );
    const forgedToken = await bad.call(
      'rawWebSocket',
      [env.wsUrl.replace(/token=[^&]*/, `token=${Date.now() + 60_000}.AAAA`), [forged], 10_000],
      20_000,
    );

    // The control again: the good page's second message arrives; the sink saw exactly two.
    await good.p.call('sendName', [sinkName, 'again from the good page']);
    const countAfterAll = await waitForCount(env.tcp, sinkName, 2);
    return {
      countAfterGood,
      badStart,
      badSend,
      rawFirst,
      rawAfterHello,
      noToken,
      forgedToken,
      countAfterAll,
      relayRefusals,
      relayPeers: env.relay.node.peers(),
      badId: badOptions.name,
    };
  },

  /**
   * Issue 14: 200 awaited sends of 1 MB from tab A to tab B over their direct WebRTC link, with
   * end-to-end credit (`ref.sendAwait`): every message arrives, in order and intact, and both
   * pages' JS heaps stay bounded.
   */
  async 'webrtc-bulk'(env) {
    const [a, b] = await webrtcPair(env);
    const sink = `bulk-${rnd()}`;
    await b.p.call('spawn', [b.id, 'bulk-sink', { name: sink }]);
    await a.p.call('waitName', [sink, 20_000]);
    const before = await a.p.call<LinkStat[]>('linkStats');
    const count = 200;
    const size = 1 << 20;
    const run = await a.p.call<{
      reason: unknown;
      result: { sent: number; ms: number; peakHeapMb: number; peakHeld: number };
    }>('run', [a.id, 'bulk-sender', { target: sink, count, size, timeout: 60_000 }, 150_000]);
    // An awaited send resolves once credit allows, not on delivery: the last few MB may still be
    // on the wire when the sender ends. Wait (bounded) for them; a lost one still fails the test.
    let report = await b.p.call<BulkReport>('callName', [sink, 'report', 20_000]);
    for (const until = Date.now() + 20_000; report.count < count && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 100));
      report = await b.p.call<BulkReport>('callName', [sink, 'report', 20_000]);
    }
    const after = await a.p.call<LinkStat[]>('linkStats');
    const rtc = (s: LinkStat[]) => stat(s, b.id);
    return {
      count,
      size,
      run,
      report,
      label: rtc(after)?.label,
      rtcFramesOut: (rtc(after)?.framesOut ?? 0) - (rtc(before)?.framesOut ?? 0),
      relayEnvelopesOut:
        (stat(after, a.relay)?.envelopesOut ?? 0) - (stat(before, a.relay)?.envelopesOut ?? 0),
    };
  },
};

/** Wait until the sink's count reaches `n` (bounded), then return the count. */
async function waitForCount(node: Node, sink: string, n: number): Promise<number> {
  const until = Date.now() + 20_000;
  for (;;) {
    const c = await node.call<number>(sink, 'count', { timeout: 10_000 });
    if (c >= n || Date.now() > until) return c;
    await new Promise((r) => setTimeout(r, 50));
  }
}

await runScenarios(
  scenarios,
  process.argv.slice(2),
  routingSetup(async () => serveStatic(await buildFixtures())),
);
process.exit(0);
